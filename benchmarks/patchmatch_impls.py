"""PMNC inference against dense neighbourhood consensus with the same scoring weights (for bench_patchmatch.py and
memory.peak_extra_bytes).

Inputs are DAISY features (stride 8, 200 channels) of a synthetic pair rendered at 8 x grid pixels, so the
correlation volume has a realistic structure (PatchMatch's cost depends on how coherent the matches are).
Both pipelines start from the same features and the same scorer (:class:`semcorr.models.pmnc.PMNCScorer`,
consensus initialisation: deterministic), and return the flat target index of each source cell:

* ``pmnc``: cosine correlation -> mutual matching -> 8 PatchMatch iterations (21 offsets, 5^4 windows, K = 1)
  -> PatchMatch's own best match (``readout="search"``: the paper's readout, the model's default).
* ``pmnc_mutual``: the same search read out by our addition, mutual matching of the scored positions -> argmax
  (``readout="mutual"``).
* ``dense_nc``: NC-Net's pipeline with the same conv stack: correlation -> mutual matching -> the stack applied
  densely ("same" padding, symmetric; ``semcorr_ext.ops.conv4d``) -> mutual matching -> argmax.
* ``dense_argmax``: the same dense scores read out by a plain argmax (no second mutual matching): the exact
  optimum that PMNC's search approximates with the same scores and the same readout.
"""
import functools

import numpy as np
import torch

from semcorr_ext import ops

__all__ = ["make_inputs", "pmnc", "pmnc_mutual", "dense_nc", "dense_argmax", "build", "pck_comparison"]


@functools.lru_cache(maxsize=None)
def build():
    from semcorr.models.pmnc import PMNC

    torch.manual_seed(0)
    return PMNC(backbone="daisy", stride=8)  # DAISY: offline; the scorer's hand-set init: deterministic


def make_inputs(grid=25, seed=0):
    """DAISY features (1, 200, grid, grid) of the astronaut photo and its random warp."""
    from semcorr.data.sample import sample_pair

    model = build()
    pair = sample_pair(seed=seed, size=8 * grid)
    src, tgt = pair.tensors()
    with torch.no_grad():
        return model.features(src), model.features(tgt)


@torch.no_grad()
def pmnc(fs, ft):
    model = build()
    return model.match_volume(model.correlation(fs, ft), readout="search")[0]


@torch.no_grad()
def pmnc_mutual(fs, ft):
    model = build()
    return model.match_volume(model.correlation(fs, ft), readout="mutual")[0]


@torch.no_grad()
def dense_nc(fs, ft):
    model = build()
    corr = model.correlation(fs, ft)
    B, Hs, Ws, Ht, Wt = corr.shape
    scores = model.scorer.dense(corr)
    del corr
    scores = ops.mutual_matching(scores.clamp_min(0))
    return scores.reshape(B, Hs, Ws, Ht * Wt).argmax(-1)


@torch.no_grad()
def dense_argmax(fs, ft):
    model = build()
    corr = model.correlation(fs, ft)
    B, Hs, Ws, Ht, Wt = corr.shape
    return model.scorer.dense(corr).reshape(B, Hs, Ws, Ht * Wt).argmax(-1)


def _field(idx, Ht, Wt, tgt_size):
    from semcorr_ext import flow

    centres = flow.grid_coords(Ht, Wt, tgt_size, dtype=torch.float32)
    return centres.reshape(Ht * Wt, 2)[idx]


def pck_comparison(grid=25, n_pairs=18, alphas=(0.05, 0.1)):
    """PCK (alpha_img) of both PMNC readouts (the paper's first) and the dense baselines on the first ``n_pairs``
    pairs of the synthetic benchmark
    (semcorr.data.synthetic, rendered at 8 x grid pixels, no stereo pair): {impl: {alpha: pck}}."""
    from semcorr.data.synthetic import SyntheticPairs
    from semcorr.models.base import Matches

    model = build()
    ds = SyntheticPairs(size=8 * grid, stereo=False)
    impls = (("pmnc", pmnc), ("pmnc_mutual", pmnc_mutual), ("dense_nc", dense_nc), ("dense_argmax", dense_argmax))
    hits = {impl: {a: 0 for a in alphas} for impl, _ in impls}
    total = 0
    for index in range(min(n_pairs, len(ds))):
        raw = ds.load_raw(index)
        src = torch.from_numpy(np.ascontiguousarray(raw.src_img)).permute(2, 0, 1)[None].float()
        tgt = torch.from_numpy(np.ascontiguousarray(raw.tgt_img)).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            fs, ft = model.features(src), model.features(tgt)
        Ht, Wt = ft.shape[-2:]
        sk = torch.from_numpy(np.asarray(raw.src_kps, dtype=np.float32))
        tk = torch.from_numpy(np.asarray(raw.tgt_kps, dtype=np.float32))
        L = float(max(raw.tgt_img.shape[:2]))
        total += len(sk)
        for impl, fn in impls:
            idx = fn(fs, ft)
            m = Matches(_field(idx, Ht, Wt, tgt.shape[-2:]), torch.zeros(idx.shape), src.shape[-2:], tgt.shape[-2:])
            err = (m.transfer_keypoints(sk) - tk).norm(dim=-1)
            for a in alphas:
                hits[impl][a] += int((err <= a * L).sum())
    return {impl: {a: h / max(1, total) for a, h in v.items()} for impl, v in hits.items()}, total
