"""SparseConv4d / SparseNeighConsensus modules and the SparseNCNet model (python API and `semcorr match`)."""
import re

import pytest
import torch
from torch import nn

from benchmarks.baselines_consensus import ncnet_neigh_consensus
from semcorr import cli
from semcorr.models import build_model
from semcorr.models.sparse_ncnet import SparseNCNet, sparse_mutual_matching, topk_union
from semcorr_ext import nn as snn
from semcorr_ext import flow, ops
from conftest import assert_close


def dense_coords(B, *dims):
    grids = torch.meshgrid(torch.arange(B), *[torch.arange(d) for d in dims], indexing="ij")
    return torch.stack(grids, -1).reshape(-1, 5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_sparse_neigh_consensus_on_dense_set_equals_ncnet(symmetric):
    torch.manual_seed(0)
    m = snn.SparseNeighConsensus(kernel_sizes=(3, 3), channels=(4, 1), symmetric=symmetric)
    B, dims = 2, (3, 4, 3, 4)  # Hs = Ht, Ws = Wt so that the swap is a permutation of the same grid
    x = torch.rand(B, 1, *dims)
    coords = dense_coords(B, *dims)
    out = m(x.reshape(-1, 1), coords).reshape(B, *dims)
    expected = ncnet_neigh_consensus(x, [l.weight for l in m.layers], [l.bias for l in m.layers], symmetric)
    assert_close(out, expected[:, 0], atol=1e-5)


def test_sparse_conv4d_module_and_shared_maps():
    torch.manual_seed(0)
    layer = snn.SparseConv4d(2, 3, (3, 1, 3, 1))
    assert layer.weight.shape == (3, 2, 3, 1, 3, 1) and "kernel_size=(3, 1, 3, 1)" in repr(layer)
    coords = dense_coords(1, 3, 2, 3, 2)
    f = torch.randn(coords.shape[0], 2)
    km = ops.kernel_map4d(coords, (3, 1, 3, 1))
    assert torch.equal(layer(f, coords), layer(f, kernel_map=km))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        snn.SparseConv4d(1, 1, 2)


def test_topk_union_and_sparse_mutual_matching():
    g = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(2, 8, 4, 5, generator=g), torch.randn(2, 8, 3, 6, generator=g)
    coords, vals = topk_union(fs, ft, 3)
    dense = ops.corr4d(fs, ft)
    b, i, j, k, l = coords.unbind(1)
    assert torch.unique(coords, dim=0).shape[0] == coords.shape[0]
    assert torch.equal(coords, torch.unique(coords, dim=0))  # sorted like a coalesced sparse tensor
    # every top-3 of both directions is present; a point found both ways carries the sum (MinkowskiUnion)
    v1, i1 = ops.corr4d_topk(fs, ft, 3)
    v2, i2 = ops.corr4d_topk(ft, fs, 3)
    fwd = {(bb, ii, jj, t // 6, t % 6) for bb in range(2) for ii in range(4) for jj in range(5)
           for t in i1[bb, ii, jj].tolist()}
    bwd = {(bb, s // 5, s % 5, kk, ll) for bb in range(2) for kk in range(3) for ll in range(6)
           for s in i2[bb, kk, ll].tolist()}
    keys = list(map(tuple, coords.tolist()))
    assert set(keys) == fwd | bwd and len(fwd & bwd) > 0
    mult = torch.tensor([(c in fwd) + (c in bwd) for c in keys], dtype=vals.dtype)
    assert_close(vals, dense[b, i, j, k, l] * mult)
    coords_u, vals_u = topk_union(fs, ft, 3, union="unique")  # our option: each point once
    assert torch.equal(coords_u, coords)
    assert_close(vals_u, dense[b, i, j, k, l])
    with pytest.raises(ValueError, match="union must be"):
        topk_union(fs, ft, 3, union="max")
    # with every point kept, sparse mutual matching is NC-Net's dense one
    coords, vals = topk_union(fs, ft, 18, union="unique")
    assert coords.shape[0] == 2 * 20 * 18
    src_id = (coords[:, 0] * 4 + coords[:, 1]) * 5 + coords[:, 2]
    tgt_id = (coords[:, 0] * 3 + coords[:, 3]) * 6 + coords[:, 4]
    mm = sparse_mutual_matching(vals, src_id, tgt_id, 40, 36)
    expected = ops.mutual_matching(dense.clamp(min=0) + 0.1)  # positive volume: same formula
    mm_pos = sparse_mutual_matching(vals.clamp(min=0) + 0.1, src_id, tgt_id, 40, 36)
    assert_close(mm_pos, expected.reshape(-1))
    assert mm.shape == vals.shape


class TinyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 8, stride=8)

    def forward(self, img):
        return self.conv(img)


def test_model_api_shapes_and_readout():
    torch.manual_seed(0)
    model = build_model("sparse-ncnet", backbone=TinyBackbone(), k=4, relocalization=None)
    assert isinstance(model, SparseNCNet) and model.name == "sparse-ncnet"
    assert isinstance(build_model("sparse_ncnet", backbone=TinyBackbone()), SparseNCNet)
    src, tgt = torch.rand(2, 3, 48, 64), torch.rand(2, 3, 40, 56)
    m = model.match(src, tgt)
    assert m.field.shape == (2, 6, 8, 2) and m.confidence.shape == (2, 6, 8)
    assert m.extras["tgt_grid"] == (5, 7) and m.extras["mutual"].dtype == torch.bool
    assert m.extras["num_points"] <= 2 * (48 + 35) * 4 and m.extras["dense_points"] == 2 * 48 * 35
    idx = m.extras["index"]
    assert ((m.field >= -1) & (m.field <= 1)).all()
    # without relocalisation a match is the centre of its target cell, and the source point its own cell
    centres = flow.grid_coords(5, 7, (40, 56)).reshape(-1, 2)
    assert_close(m.field, centres[idx])
    assert_close(m.extras["src_points"], m.source_pixels().expand(2, -1, -1, -1))
    # the match is one of the kept candidates: at least among the source cell's points
    with torch.no_grad():
        (fs, _), (ft, _) = model.features(src), model.features(tgt)
        coords, corr, score = model.sparse_scores(fs, ft)
    keys = set(map(tuple, coords.tolist()))
    for b in range(2):
        for i in range(6):
            for j in range(8):
                t = int(idx[b, i, j])
                assert (b, i, j, t // 7, t % 7) in keys
    # the readout takes the best score per source cell
    src_id = (coords[:, 0] * 6 + coords[:, 1]) * 8 + coords[:, 2]
    best = torch.full((96,), float("-inf")).scatter_reduce(0, src_id, score, "amax")
    assert_close(m.confidence.reshape(-1), best)
    # the published match list: the best point of every source and of every target cell, each once, best first
    s, t, sc = m.extras["matches"][0]
    assert 48 <= s.shape[0] <= 48 + 35 and torch.all(sc[:-1] >= sc[1:])
    assert build_model("sparse-ncnet", backbone=TinyBackbone(), k=4, relocalization=None,
                       num_matches=10).match(src, tgt).extras["matches"][1][0].shape == (10, 2)


def test_model_default_relocalises_on_the_twice_finer_grid():
    model = build_model("sparse-ncnet", backbone=TinyBackbone(), k=4)  # max-pool 2x2, hard_soft
    assert model.relocalization == "hard_soft" and model.reloc_crop_size == 2
    src, tgt = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 48, 64)
    m = model.match(src, tgt)
    assert m.field.shape == (1, 4, 4, 2) and m.extras["tgt_grid"] == (6, 8)
    # every match stays within about a cell of its coarse target cell
    idx = m.extras["index"][0]
    coarse = flow.unnormalize_coords(flow.grid_coords(3, 4, (48, 64)), (48, 64)).reshape(-1, 2)[idx.reshape(-1)]
    assert (m.target_pixels()[0].reshape(-1, 2) - coarse).abs().max() <= 16 + 1e-4
    m64 = model.double().match(src.double(), tgt.double())  # float64 end to end
    assert m64.field.dtype == m64.confidence.dtype == m64.extras["matches"][0][1].dtype == torch.float64
    torch.testing.assert_close(m64.field.float(), m.field, rtol=1e-4, atol=1e-4)
    for bad, match in [(dict(relocalization="bilinear"), "relocalization must be"),
                       (dict(reloc_crop_size=4), "reloc_crop_size must be 2 or 3"),
                       (dict(union="max"), "union must be"), (dict(k=0), "k must be >= 1")]:
        with pytest.raises(ValueError, match=match):
            SparseNCNet(backbone=TinyBackbone(), **bad)


def test_untrained_parts_are_named():
    model = build_model("sparse-ncnet", backbone="daisy")
    assert model.untrained_parts() == ["consensus"]
    model = SparseNCNet(weights=None)  # an explicitly random ResNet-101
    assert model.untrained_parts() == ["backbone", "consensus"]
    assert model.backbone.stages["layer3"][0].conv2.stride == (1, 1)  # the evaluation's change_stride
    assert SparseNCNet(weights=None, change_stride=False).backbone.stages["layer3"][0].conv2.stride == (2, 2)


def test_model_gradients_reach_consensus_weights():
    model = build_model("sparse-ncnet", backbone=TinyBackbone(), k=3, kernel_sizes=(3,), channels=(1,))
    model.train()
    src, tgt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    (fs, _), (ft, _) = model.features(src), model.features(tgt)
    _, _, score = model.sparse_scores(fs, ft)
    score.sum().backward()
    w = model.consensus.layers[0].weight
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert model.backbone.conv.weight.grad.abs().sum() > 0  # through corr4d_topk's values


def test_cli_match_runs(tmp_path, capsys):
    out_png = tmp_path / "s.png"
    with pytest.warns(UserWarning, match="random backbone"):
        assert cli.main(["match", "--method", "sparse-ncnet", "--size", "96", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "method:     sparse-ncnet" in out and "grid:       6x6 source cells -> 12x12 target cells" in out
    assert re.search(r"matches:\s+36, \d+ mutual", out) and out_png.exists()


def test_cli_match_daisy_backbone_runs(tmp_path, capsys):
    # hand-made descriptors + an untrained consensus: the published pipeline runs (max-pool to 7x7, relocalised
    # on the 14x14 grid); with random consensus weights its PCK means nothing, so none is asserted here
    assert cli.main(["match", "--method", "sparse-ncnet", "--backbone", "daisy", "--size", "120", "--out",
                     str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert "grid:       7x7 source cells -> 14x14 target cells" in out and re.search(r"PCK@0.10:\s+[0-9.]+", out)


@pytest.mark.parametrize("relocalization,size,min_pck", [(None, 120, 0.75), ("hard_soft", 240, 0.6)])
def test_identity_consensus_on_daisy_finds_the_warp(relocalization, size, min_pck):
    """With a consensus that passes the correlation through (one 1x1x1x1 layer, weight 1, bias 0) the readout is
    nearest-neighbour matching among the candidates: the pipeline (top-k union, readout, relocalisation)
    recovers the known warp of the built-in sample pair."""
    from semcorr.commands.match import pck_img
    from semcorr.data.sample import sample_pair

    pair = sample_pair(seed=2, size=size)
    src = torch.from_numpy(pair.src_img).permute(2, 0, 1)[None].float()
    tgt = torch.from_numpy(pair.tgt_img).permute(2, 0, 1)[None].float()
    model = SparseNCNet(backbone="daisy", kernel_sizes=(1,), channels=(1,), relocalization=relocalization)
    with torch.no_grad():
        model.consensus.layers[0].weight.fill_(1.0)
        model.consensus.layers[0].bias.zero_()
    src_kps, gt = pair.kps_tensors("cpu")
    pred = model.match(src, tgt).transfer_keypoints(src_kps)
    assert float(pck_img(pred, gt, pair.tgt_img.shape[:2], 0.1)[0]) >= min_pck
