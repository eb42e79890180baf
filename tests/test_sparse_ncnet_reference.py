"""SparseNCNet built from a checkpoint in the published layout equals a float64 reference of the published
evaluation pipeline (eval_model_reloc -> corr_and_add -> SparseNeighConsensus -> get_matches_both_dirs ->
relocalize hard + soft), written in tests/sparse_ncnet_published.py from reading the published code."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semcorr.models.sparse_ncnet import SparseNCNet, feature_l2_norm
import sparse_ncnet_published as published
from semcorr.models import sparse_ncnet_relocalize as reloc
from sparse_ncnet_published import (change_stride, corr_and_add, eval_features, get_matches_both_dirs,
                                    me_consensus_params, published_checkpoint, published_feature_extraction,
                                    published_state_dict, relocalize_hard_soft, sparse_neigh_consensus, train_args)

TOL = dict(rtol=1e-5, atol=1e-5)


def _images():
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    src = F.interpolate(img[..., 40:360, 100:400], size=(96, 80), mode="bilinear", align_corners=False)
    tgt = F.interpolate(img[..., 70:390, 80:380], size=(88, 96), mode="bilinear", align_corners=False)
    return src, tgt


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    fe = published_feature_extraction(seed=0)
    consensus = me_consensus_params(seed=0)
    path = tmp_path_factory.mktemp("ckpt") / "sparsencnet_k10.pth.tar"
    torch.save(published_checkpoint(published_state_dict(fe, consensus), train_args()), path)
    model = SparseNCNet(checkpoint=str(path))  # defaults: the evaluation's change_stride + hard_soft
    src, tgt = _images()
    fa, fa2x = eval_features(change_stride(fe).double(), src)
    fb, fb2x = eval_features(change_stride(fe).double(), tgt)
    points = corr_and_add(fa, fb, k=10)
    scores = sparse_neigh_consensus(points, consensus, symmetric=True)
    return dict(model=model, src=src, tgt=tgt, fa=fa, fb=fb, fa2x=fa2x, fb2x=fb2x, points=points, scores=scores)


def test_features_and_sparse_layers_equal_the_published_computation(setup):
    model = setup["model"]
    with torch.no_grad():
        (fs, fine_s), (ft, fine_t) = model.features(setup["src"]), model.features(setup["tgt"])
        coords, corr, score = model.sparse_scores(fs, ft)
    assert fs.shape[-2:] == (6, 5) and ft.shape[-2:] == (5, 6) and fine_s.shape[-2:] == (12, 10)
    torch.testing.assert_close(feature_l2_norm(fs).double(), setup["fa"], **TOL)
    torch.testing.assert_close(fine_s.double(), setup["fa2x"], **TOL)
    torch.testing.assert_close(fine_t.double(), setup["fb2x"], **TOL)
    keys = [tuple(c) for c in coords.tolist()]
    assert keys == sorted(setup["points"])  # the same 4D points, in coalesced order
    # a point found in both directions is summed (MinkowskiUnion): some values are ~2x a cosine
    assert (corr > 1.0).any()
    torch.testing.assert_close(corr.double(), torch.tensor([setup["points"][c] for c in keys], dtype=torch.float64),
                               **TOL)
    expected = torch.tensor([setup["scores"][c] for c in keys], dtype=torch.float64)
    assert expected.abs().max() > 1e-3 and (expected > 0).sum() > len(keys) // 4  # not a trivial comparison
    torch.testing.assert_close(score.double(), expected, **TOL)


def test_readout_and_relocalisation_equal_the_published_evaluation(setup):
    model = setup["model"]
    src, tgt = setup["src"], setup["tgt"]
    m = model.match(src, tgt)
    union, per_source = get_matches_both_dirs(setup["scores"])
    hs, ws, ht, wt = 6, 5, 5, 6
    cells = [(i, j) for i in range(hs) for j in range(ws)]
    pos = relocalize_hard_soft([per_source[c] for c in cells], setup["fa2x"], setup["fb2x"])  # (N, 4) yA xA yB xB
    H, W = tgt.shape[-2:]
    tgt_px = torch.stack([(pos[:, 3] + 0.5) * W / (2 * wt) - 0.5, (pos[:, 2] + 0.5) * H / (2 * ht) - 0.5], -1)
    torch.testing.assert_close(m.target_pixels()[0].reshape(-1, 2).double(), tgt_px, **TOL)
    Hs, Ws = src.shape[-2:]
    src_px = torch.stack([(pos[:, 1] + 0.5) * Ws / (2 * ws) - 0.5, (pos[:, 0] + 0.5) * Hs / (2 * hs) - 0.5], -1)
    torch.testing.assert_close(m.extras["src_points"][0].reshape(-1, 2).double(), src_px, **TOL)
    assert m.extras["tgt_grid"] == (10, 12)
    idx = m.extras["index"][0].reshape(-1).tolist()
    assert idx == [per_source[c][2] * wt + per_source[c][3] for c in cells]
    torch.testing.assert_close(m.confidence[0].reshape(-1).double(),
                               torch.tensor([union[per_source[c]] for c in cells], dtype=torch.float64), **TOL)
    # the published match list: both directions, each point once, best first, relocalised
    keys = sorted(union, key=lambda c: -union[c])
    pos = relocalize_hard_soft(keys, setup["fa2x"], setup["fb2x"])
    exp = torch.stack([(pos[:, 1] + 0.5) * Ws / (2 * ws) - 0.5, (pos[:, 0] + 0.5) * Hs / (2 * hs) - 0.5,
                       (pos[:, 3] + 0.5) * W / (2 * wt) - 0.5, (pos[:, 2] + 0.5) * H / (2 * ht) - 0.5,
                       torch.tensor([union[c] for c in keys], dtype=torch.float64)], 1)
    s, t, sc = m.extras["matches"][0]
    got = torch.cat([s, t, sc.unsqueeze(1)], 1).double()
    assert got.shape == exp.shape and len(keys) > hs * ws
    order = lambda x: np.lexsort(np.round(x.numpy(), 4).T[::-1])  # compare as sets of rows
    torch.testing.assert_close(got[order(got)], exp[order(exp)], **TOL)


def test_batch_equals_one_pair_at_a_time(setup):
    model = setup["model"]
    src, tgt = setup["src"], setup["tgt"]
    src2 = torch.flip(src, dims=[3])
    tgt2 = F.interpolate(src, size=tgt.shape[-2:], mode="bilinear", align_corners=False)
    both = model.match(torch.cat([src, src2]), torch.cat([tgt, tgt2]))
    for b, (s, t) in enumerate([(src, tgt), (src2, tgt2)]):
        one = model.match(s, t)
        torch.testing.assert_close(both.field[b], one.field[0], **TOL)
        torch.testing.assert_close(both.confidence[b], one.confidence[0], **TOL)
        for x, y in zip(both.extras["matches"][b], one.extras["matches"][0]):
            torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("method,crop", [("hard", 2), ("hard", 3), ("soft", 2), ("hard_hard", 2), ("hard_soft", 3)])
def test_every_published_relocalisation_chain(method, crop):
    """Each ``--reloc_type`` / ``--reloc_hard_crop_size`` of the evaluation scripts, on random fine features with
    matches on every border (where roi_pool's empty bins give zeros), equals the roi_pool reference."""
    g = torch.Generator().manual_seed(0)
    fa2x = published.feature_l2_norm(torch.randn(1, 8, 9, 7, generator=g, dtype=torch.float64))
    fb2x = published.feature_l2_norm(torch.randn(1, 8, 8, 10, generator=g, dtype=torch.float64))
    ha, wa, hb, wb = 4, 3, 4, 5  # the coarse grids (fine // 2)
    pos = torch.tensor([[i, j, k, l] for i in range(ha) for j in range(wa) for k, l in [(0, 0), (hb - 1, wb - 1), (2, 1)]],
                       dtype=torch.float64)
    if method.startswith("hard"):
        exp = published.relocalize(pos, fa2x, fb2x, crop_size=crop)
    else:
        exp = published.relocalize_soft(pos, fa2x, fb2x)
    if method == "hard_soft":
        exp = published.relocalize_soft(exp, fa2x, fb2x, upsample_positions=False)
    elif method == "hard_hard":
        exp = published.relocalize(exp, fa2x, fb2x, upsample_positions=False)
    got = reloc.relocalize(torch.zeros(len(pos), dtype=torch.long), pos, fa2x, fb2x, method, crop_size=crop)
    torch.testing.assert_close(got, exp, rtol=1e-12, atol=1e-12)
    if method != "soft":
        assert not torch.equal(got, pos * 2)  # the hard step moved some matches


def test_image_size_follows_the_published_resize():
    """``resize`` of lib/normalization.py: ``int(floor(h / (max(h, w) / image_size) * sf) / sf)`` with the
    evaluation's scale factor (1/16 with relocalisation + change_stride)."""
    img = torch.rand(1, 3, 150, 230)
    model = SparseNCNet(backbone="daisy", image_size=320)  # _resize reads only the two settings below
    for reloc, change, sf in [("hard_soft", True, 0.0625), (None, True, 0.125), ("hard_soft", False, 0.03125)]:
        model.relocalization, model.change_stride = reloc, change
        exp = tuple(int(np.floor(s / (230 / 320) * sf) / sf) for s in (150, 230))
        assert tuple(model._resize(img).shape[-2:]) == exp
    assert exp == (192, 320)
