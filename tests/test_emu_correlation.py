"""The CUDA kernels of corr4d and mutual_matching, run under the host emulator, against the CPU ops.

Shapes are chosen to cross the kernels' tile edges (64x64 output tiles, 16-deep channel chunks, 256-thread
rows) while staying small enough for emulation (each launch runs every block's threads on the host)."""
import pytest
import torch

from semcorr_ext import ops
from conftest import assert_close

pytestmark = pytest.mark.emu


def feats(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("flags", [dict(), dict(normalize=False), dict(relu=True, power=3.0), dict(relu=True)])
def test_corr4d_forward_backward(emu, emu_schedule, flags):
    # Ns = 70 and Nt = 66 cross a 64 tile edge; C = 19 crosses a 16-deep chunk edge.
    src, tgt = feats(2, 19, 7, 10), feats(2, 19, 6, 11, seed=1)
    args = (flags.get("normalize", True), flags.get("relu", False), flags.get("power", 1.0), 1e-6)
    out = emu.corr4d(src, tgt, *args)
    assert_close(out, ops.corr4d(src, tgt, **flags), rtol=1e-12, atol=1e-12)
    grad = feats(*out.shape, seed=2)
    gs, gt = emu.corr4d_backward(grad, src, tgt, out, *args)
    es, et = torch.ops.semcorr._corr4d_backward(grad, src, tgt, out, *args)
    assert_close(gs, es, rtol=1e-10, atol=1e-12)
    assert_close(gt, et, rtol=1e-10, atol=1e-12)


def test_corr4d_block_orders(emu):
    src, tgt = feats(2, 5, 9, 8), feats(2, 5, 9, 8, seed=1)
    expected = ops.corr4d(src, tgt)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 3)
        try:
            assert_close(emu.corr4d(src, tgt, True, False, 1.0, 1e-6), expected, rtol=1e-12, atol=1e-12)
        finally:
            emu.set_block_order("forward", 0)


@pytest.mark.parametrize("shape", [(2, 5, 3, 4, 5), (1, 1, 1, 1, 1), (1, 9, 37, 1, 1)])
def test_mutual_matching_forward_backward(emu, emu_schedule, shape):
    # Nt = 300 > 256 threads per row; B*Nt crosses a 256-thread block edge
    if shape == (2, 5, 3, 4, 5):
        shape = (2, 5, 3, 15, 20)
    c = torch.rand(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = emu.mutual_matching(c, 1e-5)
    assert_close(out, ops.mutual_matching(c), rtol=1e-12, atol=1e-14)
    grad = feats(*shape, seed=3)
    assert_close(emu.mutual_matching_backward(grad, c, 1e-5),
                 torch.ops.semcorr._mutual_matching_backward(grad, c, 1e-5), rtol=1e-10, atol=1e-12)


def test_mutual_matching_ties_go_to_first_index(emu):
    c = torch.ones(1, 2, 2, 2, 2, dtype=torch.float64)  # every entry is a maximum
    grad = feats(*c.shape, seed=4)
    assert_close(emu.mutual_matching_backward(grad, c, 1e-5),
                 torch.ops.semcorr._mutual_matching_backward(grad, c, 1e-5), rtol=1e-12, atol=1e-14)
