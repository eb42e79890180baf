"""The CUDA kernels of patchmatch_propagate, gather_windows4d(_points, _linear) and patchmatch_select run under the host emulator,
against the CPU ops: identical candidates (same seed and iteration -> same random draws), identical windows,
identical (bitwise: same order of additions) window gradients, identical selections.

Shapes cross the kernels' block edges (128 threads per block for the per-pixel kernels, 256 for the
element-wise ones) while staying small enough for emulation."""
import pytest
import torch

from semcorr_ext import ops
from semcorr_ext.ops.patchmatch import pmnc_offsets
from op_contract import grid_pairs as rand_matches

pytestmark = pytest.mark.emu


@pytest.mark.parametrize("K,R,radius,seed,it", [(1, 0, 0, 0, 0), (2, 3, 2, 5, 7), (1, 4, 6, -3, 1)])
def test_patchmatch_propagate_identical(emu, emu_schedule, K, R, radius, seed, it):
    m = rand_matches(2, 9, 8, K, 7, 10, spill=1)  # 144 pixels: two 128-thread blocks
    off = pmnc_offsets()
    c, v = emu.patchmatch_propagate(m, off, [7, 10], R, radius, seed, it)
    ec, ev = ops.patchmatch_propagate(m, off, target_size=(7, 10), random_samples=R, radius=radius, seed=seed,
                                      iteration=it)
    assert torch.equal(c, ec) and torch.equal(v, ev)


def test_patchmatch_propagate_block_orders(emu):
    m = rand_matches(1, 12, 12, 1, 6, 6)
    expected = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(6, 6), random_samples=2, radius=3, seed=9)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 3)
        try:
            got = emu.patchmatch_propagate(m, pmnc_offsets(), [6, 6], 2, 3, 9, 0)
        finally:
            emu.set_block_order("forward", 0)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def _candidates(g, corr):
    return rand_matches(1, 4, 3, 2, 5, 4, seed=1, spill=2)


def _points(g, corr):
    M = 30
    pts = torch.stack([torch.randint(-1, 3, (M,), generator=g)] +
                      [torch.randint(-3, n + 3, (M,), generator=g) for n in corr.shape[1:]], 1)
    pts[1] = pts[0]  # a repeated point
    return pts


# (op, batch of the correlation, where the windows are: drawn from g after the correlation)
GATHERS = [("gather_windows4d", 1, _candidates), ("gather_windows4d_points", 2, _points)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("w", [3, 5])
@pytest.mark.parametrize("op,batch,where", GATHERS, ids=[row[0] for row in GATHERS])
def test_gather_windows4d_forward_backward(emu, emu_schedule, op, batch, where, dtype, w):
    g = torch.Generator().manual_seed(0)
    corr = torch.randn(batch, 4, 3, 5, 4, generator=g, dtype=dtype)
    idx = where(g, corr)
    out = getattr(emu, op)(corr, idx, w)
    assert torch.equal(out, getattr(ops, op)(corr, idx, w))
    grad = torch.randn(out.shape, generator=g, dtype=dtype)
    got = getattr(emu, op + "_backward")(grad, idx, list(corr.shape), w)
    exp = getattr(torch.ops.semcorr, "_%s_backward" % op)(grad, idx, list(corr.shape), w)
    assert torch.equal(got, exp)  # same order of additions: bitwise equal


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
