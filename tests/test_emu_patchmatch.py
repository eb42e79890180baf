"""The CUDA kernels of patchmatch_propagate, gather_windows4d(_points, _linear) and patchmatch_select run under the host emulator,
against the CPU ops: identical candidates (same seed and iteration -> same random draws), identical windows,
identical (bitwise: same order of additions) window gradients, identical selections.

Shapes cross the kernels' block edges (128 threads per block for the per-pixel kernels, 256 for the
element-wise ones) while staying small enough for emulation."""
import pytest
import torch

from semcorr_ext import ops
from semcorr_ext.ops.patchmatch import pmnc_offsets

pytestmark = pytest.mark.emu


def rand_matches(B, Hs, Ws, K, Ht, Wt, seed=0, spill=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(-spill, Ht + spill, (B, Hs, Ws, K, 1), generator=g)
    c = torch.randint(-spill, Wt + spill, (B, Hs, Ws, K, 1), generator=g)
    return torch.cat([r, c], -1)


@pytest.mark.parametrize("K,R,radius,seed,it", [(1, 0, 0, 0, 0), (2, 3, 2, 5, 7), (1, 4, 6, -3, 1)])
def test_patchmatch_propagate_identical(emu, emu_schedule, K, R, radius, seed, it):
    m = rand_matches(2, 9, 8, K, 7, 10, spill=1)  # 144 pixels: two 128-thread blocks
    off = pmnc_offsets()
    c, v = emu.patchmatch_propagate(m, off, [7, 10], R, radius, seed, it)
    ec, ev = ops.patchmatch_propagate(m, off, target_size=(7, 10), random_samples=R, radius=radius, seed=seed,
                                      iteration=it)
    assert torch.equal(c, ec) and torch.equal(v, ev)


def test_patchmatch_propagate_block_orders_and_empty(emu):
    m = rand_matches(1, 12, 12, 1, 6, 6)
    expected = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(6, 6), random_samples=2, radius=3, seed=9)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 3)
        try:
            got = emu.patchmatch_propagate(m, pmnc_offsets(), [6, 6], 2, 3, 9, 0)
        finally:
            emu.set_block_order("forward", 0)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    c, v = emu.patchmatch_propagate(torch.zeros(0, 3, 3, 1, 2, dtype=torch.int64), pmnc_offsets(), [4, 4], 0, 0, 0, 0)
    assert c.shape == (0, 3, 3, 30, 2) and v.shape == (0, 3, 3, 30)


def test_patchmatch_propagate_errors_name_arguments(emu):
    with pytest.raises(RuntimeError, match=r"semcorr::patchmatch_propagate: `matches` must be int64"):
        emu.patchmatch_propagate(torch.zeros(1, 2, 2, 1, 2), pmnc_offsets(), [4, 4], 0, 0, 0, 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("w", [3, 5])
def test_gather_windows4d_forward_backward(emu, emu_schedule, dtype, w):
    g = torch.Generator().manual_seed(0)
    corr = torch.randn(1, 4, 3, 5, 4, generator=g, dtype=dtype)
    cand = rand_matches(1, 4, 3, 2, 5, 4, seed=1, spill=2)
    out = emu.gather_windows4d(corr, cand, w)
    assert torch.equal(out, ops.gather_windows4d(corr, cand, w))
    grad = torch.randn(out.shape, generator=g, dtype=dtype)
    got = emu.gather_windows4d_backward(grad, cand, list(corr.shape), w)
    exp = torch.ops.semcorr._gather_windows4d_backward(grad, cand, list(corr.shape), w)
    assert torch.equal(got, exp)  # same order of additions: bitwise equal


def test_gather_windows4d_empty_and_errors(emu):
    out = emu.gather_windows4d(torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 0, 2, dtype=torch.int64), 3)
    assert out.shape == (1, 2, 2, 0, 3, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"semcorr::gather_windows4d: `window` must be odd"):
        emu.gather_windows4d(torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 1, 2, dtype=torch.int64), 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("w", [3, 5])
def test_gather_windows4d_points_forward_backward(emu, emu_schedule, dtype, w):
    g = torch.Generator().manual_seed(0)
    corr = torch.randn(2, 4, 3, 5, 4, generator=g, dtype=dtype)
    M = 30
    pts = torch.stack([torch.randint(-1, 3, (M,), generator=g)] +
                      [torch.randint(-3, n + 3, (M,), generator=g) for n in corr.shape[1:]], 1)
    pts[1] = pts[0]  # a repeated point
    out = emu.gather_windows4d_points(corr, pts, w)
    assert torch.equal(out, ops.gather_windows4d_points(corr, pts, w))
    grad = torch.randn(out.shape, generator=g, dtype=dtype)
    got = emu.gather_windows4d_points_backward(grad, pts, list(corr.shape), w)
    exp = torch.ops.semcorr._gather_windows4d_points_backward(grad, pts, list(corr.shape), w)
    assert torch.equal(got, exp)  # same order of additions: bitwise equal


@pytest.mark.parametrize("with_bias", [True, False])
def test_gather_windows4d_linear(emu, emu_schedule, with_bias):
    # the launch sequence: the gather kernel, then a GEMM (cuBLAS on a GPU, the CPU BLAS under the emulator)
    g = torch.Generator().manual_seed(3)
    corr = torch.randn(2, 4, 3, 5, 4, generator=g, dtype=torch.float64)
    pts = torch.stack([torch.randint(-1, 3, (20,), generator=g)] +
                      [torch.randint(-2, n + 2, (20,), generator=g) for n in corr.shape[1:]], 1)
    weight = torch.randn(5, 3, 3, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(5, generator=g, dtype=torch.float64) if with_bias else None
    torch.testing.assert_close(emu.gather_windows4d_linear(corr, pts, weight, bias),
                               ops.gather_windows4d_linear(corr, pts, weight, bias), rtol=1e-12, atol=1e-12)


def test_gather_windows4d_points_empty_and_errors(emu):
    out = emu.gather_windows4d_points(torch.rand(1, 2, 2, 2, 2), torch.zeros(0, 5, dtype=torch.int64), 3)
    assert out.shape == (0, 3, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"semcorr::gather_windows4d_points: `points` must be int64"):
        emu.gather_windows4d_points(torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 5), 3)


@pytest.mark.parametrize("k", [1, 3, 40])
def test_patchmatch_select_identical(emu, emu_schedule, k):
    g = torch.Generator().manual_seed(k)
    cand = torch.randint(0, 9, (2, 10, 7, 31, 2), generator=g)  # 140 pixels
    scores = torch.randint(0, 4, (2, 10, 7, 31), generator=g).double()  # many ties
    scores[0, 0, 0, 3] = float("nan")
    valid = torch.rand(2, 10, 7, 31, generator=g) < 0.6
    got = emu.patchmatch_select(cand, scores, valid, k)
    exp = ops.patchmatch_select(cand, scores, valid, k, return_indices=True)
    for a, b in zip(got, exp):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    assert (exp[2][0, 0, 0] != 3).all() if k < 31 else (exp[2][0, 0, 0] == 3).any()  # the NaN ranks last


def test_pmnc_iteration_identical(emu):
    # a few PMNC iterations with the emulated kernels and with the CPU ops, same seed: the same final matches
    g = torch.Generator().manual_seed(3)
    corr = torch.rand(1, 6, 6, 6, 6, generator=g)
    m = rand_matches(1, 6, 6, 1, 6, 6, seed=2)
    m_emu = m.clone()
    for it in range(3):
        c, v = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(6, 6), random_samples=2, radius=2, seed=1,
                                        iteration=it)
        s = ops.gather_windows4d(corr, c, 3).sum(dim=(-4, -3, -2, -1))
        m, _ = ops.patchmatch_select(c, s, v, 1)
        ce, ve = emu.patchmatch_propagate(m_emu, pmnc_offsets(), [6, 6], 2, 2, 1, it)
        se = emu.gather_windows4d(corr, ce, 3).sum(dim=(-4, -3, -2, -1))
        m_emu = emu.patchmatch_select(ce, se, ve, 1)[0]
        assert torch.equal(m, m_emu)
