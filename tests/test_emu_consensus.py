"""The CUDA kernels of conv4d and max_pool4d, run under the host emulator, against the CPU ops.

conv4d's implicit-GEMM tiles: 128 positions x (8 or 16) output channels x 16-deep (channel, tap) steps in
the forward, 16 channels x 64 (channel, tap) columns x 16-position steps in the weight gradient; the shapes
below cross each of these edges while staying small enough to emulate (every thread of every block runs on
the host)."""
import pytest
import torch

from semcorr_ext import ops
from conftest import assert_close

pytestmark = pytest.mark.emu


def feats(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# (x shape, weight shape, padding): Npos 180 > 128; K = 2*81 = 162 crosses 16 and 64; Cout 17 > 16 (MI = 2
# tiles); Cout 3 (MI = 1); padding > k - 1 makes the input gradient crop (negative padding in the kernel).
CONV_CASES = [
    ((1, 2, 3, 4, 3, 5), (17, 2, 3, 3, 3, 3), [1, 1, 1, 1]),
    ((2, 3, 2, 3, 4, 3), (3, 3, 3, 1, 3, 3), [1, 0, 1, 1]),
    ((1, 1, 3, 3, 2, 2), (2, 1, 3, 3, 3, 3), [3, 1, 1, 2]),
]


@pytest.mark.parametrize("xs,ws,pad", CONV_CASES)
def test_conv4d_forward_backward(emu, emu_schedule, xs, ws, pad):
    x, w, b = feats(*xs), feats(*ws, seed=1), feats(ws[0], seed=2)
    out = emu.conv4d(x, w, b, pad)
    assert_close(out, ops.conv4d(x, w, b, pad), rtol=1e-10, atol=1e-10)
    grad = feats(*out.shape, seed=3)
    got = emu.conv4d_backward(grad, x, w, pad, [True, True, True])
    expected = torch.ops.semcorr._conv4d_backward(grad, x, w, pad, [True, True, True])
    for a, e in zip(got, expected):
        assert_close(a, e, rtol=1e-10, atol=1e-10)


def test_conv4d_float32_no_bias_and_mask(emu):
    x, w = feats(1, 2, 3, 3, 3, 3, dtype=torch.float32), feats(2, 2, 3, 3, 3, 3, dtype=torch.float32, seed=1)
    out = emu.conv4d(x, w, None, [1, 1, 1, 1])
    assert_close(out, ops.conv4d(x, w), rtol=1e-5, atol=1e-5)
    gx, gw, gb = emu.conv4d_backward(torch.ones_like(out), x, w, [1, 1, 1, 1], [False, True, False])
    assert torch.equal(gx, torch.zeros_like(x)) and torch.equal(gb, torch.zeros(2))
    expected = torch.ops.semcorr._conv4d_backward(torch.ones_like(out), x, w, [1, 1, 1, 1], [False, True, False])[1]
    assert_close(gw, expected, rtol=1e-5, atol=1e-4)


def test_conv4d_block_orders(emu):
    x, w = feats(1, 2, 3, 4, 3, 4), feats(3, 2, 3, 3, 3, 3, seed=1)
    expected = ops.conv4d(x, w)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 5)
        try:
            assert_close(emu.conv4d(x, w, None, [1, 1, 1, 1]), expected, rtol=1e-12, atol=1e-12)
        finally:
            emu.set_block_order("forward", 0)


@pytest.mark.parametrize("shape,k", [((2, 1, 8, 6, 5, 9), [2, 2, 2, 2]), ((1, 3, 7, 7, 4, 4), [3, 2, 1, 4])])
def test_max_pool4d_forward_backward(emu, emu_schedule, shape, k):
    x = feats(*shape)
    x[0, 0, 0, 0, 0, 0] = float("nan")
    values, argmax = emu.max_pool4d(x, k)
    ev, ea = ops.max_pool4d(x, k)
    assert torch.equal(argmax, ea)
    torch.testing.assert_close(values, ev, rtol=0, atol=0, equal_nan=True)
    grad = feats(*values.shape, seed=1)
    assert torch.equal(emu.max_pool4d_backward(grad, argmax, list(shape), k),
                       torch.ops.semcorr._max_pool4d_backward(grad, argmax, list(shape), k))


def test_max_pool4d_large_grid(emu):
    x = feats(1, 2, 10, 8, 8, 8)  # 2 * 5*4*4*4 = 640 outputs: crosses the 256-thread block edge twice
    values, argmax = emu.max_pool4d(x, [2, 2, 2, 2])
    ev, ea = ops.max_pool4d(x, 2)
    assert torch.equal(values, ev) and torch.equal(argmax, ea)
