"""The numbers the CLI prints, parsed and compared with the same quantities computed here.

``semcorr match`` on the built-in sample pair and ``semcorr eval`` on the synthetic benchmark print PCK values;
the test recomputes them from the model's match field with its own float64 keypoint transfer (bilinear between
source cell centres, border clamped, as :func:`semcorr_ext.flow.transfer_keypoints` documents) and its own PCK
(fraction of valid keypoints within ``alpha * max(H, W)`` of the truth, averaged over pairs), so a wrong
threshold, transfer, average or column is caught, not only a missing line.
"""
import re

import numpy as np
import pytest
import torch

from semcorr import cli
from semcorr.models import build_model

ALPHAS = (0.05, 0.1)


def ref_transfer(field: np.ndarray, kps: np.ndarray, src_hw, tgt_hw) -> np.ndarray:
    """(Hs, Ws, 2) normalised field (align_corners=True over the target), (N, 2) source pixels -> target pixels."""
    Hs, Ws = field.shape[:2]
    (H, W), (Ht, Wt) = src_hw, tgt_hw
    px = (field + 1) / 2 * np.array([Wt - 1, Ht - 1], dtype=np.float64)
    out = np.empty_like(kps, dtype=np.float64)
    for n, (x, y) in enumerate(kps):
        gx = min(max((x + 0.5) * Ws / W - 0.5, 0.0), Ws - 1.0)  # grid units: cell j is centred at j
        gy = min(max((y + 0.5) * Hs / H - 0.5, 0.0), Hs - 1.0)
        x0, y0 = min(int(np.floor(gx)), Ws - 2), min(int(np.floor(gy)), Hs - 2)
        fx, fy = gx - x0, gy - y0
        out[n] = ((1 - fy) * ((1 - fx) * px[y0, x0] + fx * px[y0, x0 + 1])
                  + fy * ((1 - fx) * px[y0 + 1, x0] + fx * px[y0 + 1, x0 + 1]))
    return out


def ref_pck(pred: np.ndarray, gt: np.ndarray, L: float, alpha: float) -> float:
    valid = (gt >= 0).all(1)
    d = np.sqrt(((pred[valid] - gt[valid]) ** 2).sum(1))
    return float((d <= alpha * L).sum()) / valid.sum()


def _printed(out: str, label: str) -> float:
    m = re.search(r"^%s\s+(-?[0-9.]+)" % re.escape(label), out, re.M)
    assert m, "no %r line in:\n%s" % (label, out)
    return float(m.group(1))


def test_match_prints_the_pck_of_its_match_field(tmp_path, capsys):
    from semcorr.data.sample import sample_pair

    size, seed = 96, 2
    assert cli.main(["match", "--size", str(size), "--seed", str(seed), "--out", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out

    pair = sample_pair(seed=seed, size=size)
    model = build_model("nn")
    src = torch.from_numpy(np.ascontiguousarray(pair.src_img)).permute(2, 0, 1)[None]
    tgt = torch.from_numpy(np.ascontiguousarray(pair.tgt_img)).permute(2, 0, 1)[None]
    m = model.match(src, tgt)
    src_kps, gt = (k[0].double().numpy() for k in pair.kps_tensors())
    pred = ref_transfer(m.field[0].double().numpy(), src_kps, pair.src_img.shape[:2], pair.tgt_img.shape[:2])
    L = max(pair.tgt_img.shape[:2])
    values = [ref_pck(pred, gt, L, a) for a in ALPHAS]
    # the values must be informative: not 0 or 1 at both thresholds, and different from each other
    assert 0 < values[0] < values[1] <= 1, values
    for a, v in zip(ALPHAS, values):
        assert _printed(out, "PCK@%.2f:" % a) == pytest.approx(v, abs=5.1e-5)
    assert _printed(out, "matches:") == m.field.shape[1] * m.field.shape[2]
    assert _printed(out, "confidence: mean") == pytest.approx(float(m.confidence.mean()), abs=5.1e-5)


def test_eval_prints_the_mean_per_pair_pck(tmp_path, capsys):
    from semcorr.data.datasets import build_dataset

    n, size = 2, 96
    rc = cli.main(["eval", "--method", "nn", "--dataset", "synthetic", "--limit", str(n), "--size", str(size),
                   "--alpha", "0.05", "0.1", "--out", str(tmp_path / "ev"), "--no-progress", "--no-figures",
                   "--device", "cpu"])
    assert rc == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("category"))
    cols = header.split()[2:]
    row = next(line for line in out.splitlines() if line.startswith("all "))
    printed = dict(zip(cols, map(float, row.split()[2:])))
    assert int(row.split()[1]) == n

    data = build_dataset("synthetic", None, size=size)
    model = build_model("nn")
    per_pair = {a: [] for a in ALPHAS}
    for i in range(n):
        s = data[i]
        m = model.match(s["src_img"][None], s["tgt_img"][None])
        nk = s["n_kps"]
        src_kps, gt = s["src_kps"][:nk].double().numpy(), s["tgt_kps"][:nk].double().numpy()
        pred = ref_transfer(m.field[0].double().numpy(), src_kps, s["src_img"].shape[-2:], s["tgt_img"].shape[-2:])
        for a in ALPHAS:
            per_pair[a].append(ref_pck(pred, gt, s["thresh_img"], a))
    for a in ALPHAS:
        want = 100 * np.mean(per_pair[a])
        assert printed["PCK@%g" % a] == pytest.approx(want, abs=0.0051), (a, printed, per_pair)
    assert printed["PCK@0.05"] < printed["PCK@0.1"]
