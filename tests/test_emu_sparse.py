"""The CUDA kernels of corr4d_topk, kernel_map4d and sparse_conv4d, run under the host emulator, against the
CPU ops.

Shapes cross the kernels' tile edges (corr4d_topk: 32 source rows x 64 target columns per block, 16-deep
channel chunks; sparse_conv4d: 32 pairs x 32 channels per block, 16-deep reductions, 256-thread 1-D grids)
while staying small enough for emulation."""
import pytest
import torch

from semcorr_ext import ops
from conftest import assert_close

pytestmark = pytest.mark.emu


def feats(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def sparse_coords(B, dims, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    grids = torch.meshgrid(*[torch.arange(d) for d in dims], indexing="ij")
    full = torch.stack(grids, -1).reshape(-1, 4)
    rows = []
    for b in range(B):
        pick = full[torch.randperm(full.shape[0], generator=g)[:n]]
        rows.append(torch.cat([torch.full((pick.shape[0], 1), b), pick], 1))
    c = torch.cat(rows)
    return c[torch.randperm(c.shape[0], generator=g)]


# ---- corr4d_topk -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalize,k", [(True, 5), (False, 32)])
def test_corr4d_topk_forward_backward(emu, emu_schedule, normalize, k):
    # Ns = 35 crosses a 32-row block edge, Nt = 70 a 64-column tile edge, C = 19 a 16-deep chunk edge
    src, tgt = feats(2, 19, 5, 7), feats(2, 19, 7, 10, seed=1)
    v, i = emu.corr4d_topk(src, tgt, k, normalize, 1e-6)
    ev, ei = ops.corr4d_topk(src, tgt, k, normalize=normalize)
    assert_close(v, ev, rtol=1e-12, atol=1e-12)
    assert torch.equal(i, ei)
    grad = feats(*v.shape, seed=2)
    gs, gt = emu.corr4d_topk_backward(grad, src, tgt, v, i, normalize, 1e-6)
    es, et = torch.ops.semcorr._corr4d_topk_backward(grad, src, tgt, ev, ei, normalize, 1e-6)
    assert_close(gs, es, rtol=1e-10, atol=1e-12)
    assert_close(gt, et, rtol=1e-10, atol=1e-12)


def test_corr4d_topk_ties_float32_and_single_cell(emu):
    src = feats(1, 3, 3, 2, dtype=torch.float32)
    tgt = feats(1, 3, 1, 1, dtype=torch.float32, seed=1).expand(1, 3, 9, 10)  # all 90 targets tie
    v, i = emu.corr4d_topk(src, tgt, 4, True, 1e-6)
    assert torch.equal(i, torch.arange(4).expand(1, 3, 2, 4))
    assert_close(v, ops.corr4d_topk(src, tgt, 4)[0])
    one = feats(1, 3, 1, 1, dtype=torch.float32)
    v, i = emu.corr4d_topk(one, one, 1, True, 1e-6)
    assert_close(v, ops.corr4d_topk(one, one, 1)[0])
    assert i.item() == 0


def test_corr4d_topk_block_orders(emu):
    src, tgt = feats(2, 5, 9, 8), feats(2, 5, 6, 8, seed=1)
    ev, ei = ops.corr4d_topk(src, tgt, 6)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 3)
        try:
            v, i = emu.corr4d_topk(src, tgt, 6, True, 1e-6)
            assert_close(v, ev, rtol=1e-12, atol=1e-12)
            assert torch.equal(i, ei)
        finally:
            emu.set_block_order("forward", 0)


# ---- kernel_map4d + sparse_conv4d --------------------------------------------------------------------------

@pytest.mark.parametrize("ks", [3, (3, 1, 1, 5)])
def test_kernel_map4d(emu, ks):
    coords = sparse_coords(2, (4, 3, 4, 5), 70, seed=1)  # K*N = 81*140 crosses many 256-thread blocks
    km = ops.kernel_map4d(coords, ks)
    got = emu.kernel_map4d(coords.int(), [ks] if isinstance(ks, int) else list(ks))
    for a, b in zip(got, (km.in_rows, km.out_rows, km.offsets_ptr)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("ks,cin,cout", [((3, 1, 1, 3), 17, 33), ((1, 3, 3, 1), 2, 3)])
def test_sparse_conv4d_forward_backward(emu, emu_schedule, ks, cin, cout):
    coords = sparse_coords(2, (5, 3, 3, 5), 40, seed=2)  # 80 points: > 32 pairs per offset
    km = ops.kernel_map4d(coords, ks)
    f, w, b = feats(80, cin), feats(cout, cin, *ks, seed=1), feats(cout, seed=2)
    maps = (km.in_rows, km.out_rows, km.offsets_ptr)
    out = emu.sparse_conv4d(f, w, b, *maps)
    assert_close(out, ops.sparse_conv4d(f, None, w, b, kernel_map=km), rtol=1e-12, atol=1e-12)
    grad = feats(80, cout, seed=3)
    got = emu.sparse_conv4d_backward(grad, f, w, *maps)
    expected = torch.ops.semcorr._sparse_conv4d_backward(grad, f, w, *maps)
    for a, e in zip(got, expected):
        assert_close(a, e, rtol=1e-10, atol=1e-12)


def test_sparse_conv4d_block_orders(emu):
    coords = sparse_coords(1, (6, 2, 2, 6), 70, seed=4)
    km = ops.kernel_map4d(coords, (3, 1, 1, 3))
    f, w = feats(70, 20), feats(40, 20, 3, 1, 1, 3, seed=1)
    expected = ops.sparse_conv4d(f, None, w, kernel_map=km)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 5)
        try:
            out = emu.sparse_conv4d(f, w, None, km.in_rows, km.out_rows, km.offsets_ptr)
            assert_close(out, expected, rtol=1e-12, atol=1e-12)
        finally:
            emu.set_block_order("forward", 0)
