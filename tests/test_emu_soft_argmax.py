"""The CUDA kernels of kernel_soft_argmax (one warp per source position, 8 warps per block), run under the host
emulator, against the CPU op. Shapes cross the kernels' edges: rows = B*Hs*Ws not a multiple of the 8 warps of a
block, Ht*Wt above and below the 32 lanes of a warp, lanes without elements."""
import pytest
import torch

from semcorr_ext import ops
from conftest import assert_close

pytestmark = pytest.mark.emu


def volume(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _args(kw):
    sigma = kw.get("sigma", 5.0)
    return (kw.get("beta", 50.0), 0.0 if sigma is None else sigma, kw.get("normalize", True))


@pytest.mark.parametrize("kw", [dict(), dict(sigma=None), dict(sigma=1.0, normalize=False, beta=4.0)])
@pytest.mark.parametrize("shape", [(2, 3, 3, 5, 7), (1, 1, 1, 1, 1), (1, 3, 4, 7, 10)])
def test_kernel_soft_argmax_forward_backward(emu, emu_schedule, kw, shape):
    c = volume(*shape)
    out = emu.kernel_soft_argmax(c, *_args(kw))
    assert_close(out, ops.kernel_soft_argmax(c, **kw), rtol=1e-12, atol=1e-13)
    grad = volume(*shape[:3], 2, seed=1)
    assert_close(emu.kernel_soft_argmax_backward(grad, c, *_args(kw)),
                 torch.ops.semcorr._kernel_soft_argmax_backward(grad, c, *_args(kw)), rtol=1e-10, atol=1e-12)


def test_kernel_soft_argmax_float32_and_ties(emu):
    c = volume(2, 3, 3, 6, 6, dtype=torch.float32).clamp(min=0)
    assert_close(emu.kernel_soft_argmax(c, 100.0, 5.0, True), ops.kernel_soft_argmax(c, beta=100.0), rtol=1e-5,
                 atol=1e-6)
    t = torch.zeros(1, 1, 2, 3, 20, dtype=torch.float64)  # every lane sees the maximum: the first must win
    t[..., 0, 3] = 1.0
    t[..., 2, 19] = 1.0
    assert_close(emu.kernel_soft_argmax(t, 50.0, 1.0, True), ops.kernel_soft_argmax(t, sigma=1.0), rtol=1e-12,
                 atol=1e-13)


def test_kernel_soft_argmax_block_orders(emu):
    c = volume(3, 3, 3, 4, 9)
    expected = ops.kernel_soft_argmax(c)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 5)
        try:
            assert_close(emu.kernel_soft_argmax(c, 50.0, 5.0, True), expected, rtol=1e-12, atol=1e-13)
        finally:
            emu.set_block_order("forward", 0)
