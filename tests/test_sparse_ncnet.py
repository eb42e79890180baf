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
from semcorr_ext import ops
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
    assert_close(vals, dense[b, i, j, k, l])
    assert torch.unique(coords, dim=0).shape[0] == coords.shape[0]
    # every top-3 of both directions is present
    v1, i1 = ops.corr4d_topk(fs, ft, 3)
    keys = set(map(tuple, coords.tolist()))
    for bb in range(2):
        for ii in range(4):
            for jj in range(5):
                for t in i1[bb, ii, jj].tolist():
                    assert (bb, ii, jj, t // 6, t % 6) in keys
    # with every point kept, sparse mutual matching is NC-Net's dense one
    coords, vals = topk_union(fs, ft, 18)
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
    model = build_model("sparse-ncnet", backbone=TinyBackbone(), k=4)
    assert isinstance(model, SparseNCNet) and model.name == "sparse-ncnet"
    assert isinstance(build_model("sparse_ncnet", backbone=TinyBackbone()), SparseNCNet)
    src, tgt = torch.rand(2, 3, 48, 64), torch.rand(2, 3, 40, 56)
    m = model.match(src, tgt)
    assert m.field.shape == (2, 6, 8, 2) and m.confidence.shape == (2, 6, 8)
    assert m.extras["tgt_grid"] == (5, 7) and m.extras["mutual"].dtype == torch.bool
    assert m.extras["num_points"] <= 2 * (48 + 35) * 4 and m.extras["dense_points"] == 2 * 48 * 35
    idx = m.extras["index"]
    assert ((m.field >= -1) & (m.field <= 1)).all()
    # the match is one of the kept candidates: at least among the source cell's points
    with torch.no_grad():
        fs, ft = model.features(src), model.features(tgt)
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


def test_model_gradients_reach_consensus_weights():
    model = build_model("sparse-ncnet", backbone=TinyBackbone(), k=3, kernel_sizes=(3,), channels=(1,))
    model.train()
    src, tgt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fs, ft = model.features(src), model.features(tgt)
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
    assert "method:     sparse-ncnet" in out and "grid:       6x6 source cells -> 6x6 target cells" in out
    assert re.search(r"matches:\s+36, \d+ mutual", out) and out_png.exists()


def test_cli_match_daisy_backbone_finds_the_warp(tmp_path, capsys):
    # hand-made descriptors + untrained consensus: the readout falls back on the correlation among the kept
    # candidates, so PCK is close to nearest-neighbour matching
    assert cli.main(["match", "--method", "sparse-ncnet", "--backbone", "daisy", "--size", "120", "--out",
                     str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    pck = float(re.search(r"PCK@0.10:\s+([0-9.]+)", out).group(1))
    assert pck >= 0.5
