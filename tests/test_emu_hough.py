"""The CUDA kernels of hough_match and hough_vote, run under the host emulator, against the CPU ops.

Shapes cross the 256-thread block edges of the element-wise passes and of the per-bin smoothing pass while
staying small for emulation; a 4096-block grid stride is crossed by none (that needs > 1M matches)."""
import pytest
import torch

from semcorr_ext import ops
from conftest import assert_close

pytestmark = pytest.mark.emu


def make(B, Ns, Nt, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    app = torch.rand(B, Ns, Nt, generator=g, dtype=torch.float64).to(dtype)
    sc = (torch.rand(B, Ns, 2, generator=g) * torch.tensor([50.0, 40.0]))
    tc = (torch.rand(B, Nt, 2, generator=g) * torch.tensor([60.0, 30.0]))
    return app, sc, tc


@pytest.mark.parametrize("smooth", [True, False])
def test_hough_match_forward_backward(emu, emu_schedule, smooth):
    app, sc, tc = make(2, 19, 23)  # 437 matches: crosses a 256-thread block; ncells=300 -> > 256 bins
    args = ([50.0, 40.0], [60.0, 30.0, 58.0, 31.0], 300, smooth)
    out = emu.hough_match(app, sc, tc, *args)
    assert_close(out, ops.hough_match(app, sc, tc, (50, 40), [(60, 30), (58, 31)], ncells=300, smooth=smooth),
                 rtol=1e-12, atol=1e-13)
    grad = torch.randn(app.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert_close(emu.hough_match_backward(grad, app, sc, tc, *args),
                 torch.ops.semcorr._hough_match_backward(grad, app, sc, tc, *args), rtol=1e-12, atol=1e-13)


def test_hough_match_block_orders(emu):
    app, sc, tc = make(1, 17, 31)
    expected = ops.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=100)
    for order in ("reverse", "shuffle"):
        emu.set_block_order(order, 5)
        try:
            assert_close(emu.hough_match(app, sc, tc, [50.0, 40.0], [60.0, 30.0], 100, True), expected,
                         rtol=1e-12, atol=1e-13)
        finally:
            emu.set_block_order("forward", 0)


def test_hough_match_determinism_alert(emu):
    app, sc, tc = make(1, 3, 4)
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(RuntimeError, match="hough_match"):
            emu.hough_match(app, sc, tc, [5.0, 4.0], [6.0, 3.0], 10, True)
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("nbins,kshape", [((300,), (5,)), ((6, 7), (3, 3)), ((3, 5, 4), (3, 1, 3)), ((9,), None)])
def test_hough_vote_forward_backward(emu, emu_schedule, nbins, kshape):
    g = torch.Generator().manual_seed(1)
    total = 1
    for n in nbins:
        total *= n
    app = torch.rand(2, 13, 21, generator=g, dtype=torch.float64)
    bins = torch.randint(-1, total, (2, 13, 21), generator=g)
    k = torch.rand(*kshape, generator=g, dtype=torch.float64) if kshape else None
    out = emu.hough_vote(app, bins, list(nbins), k)
    assert_close(out, ops.hough_vote(app, bins, nbins, smooth_kernel=k), rtol=1e-12, atol=1e-13)
    grad = torch.randn(app.shape, dtype=torch.float64, generator=g)
    assert_close(emu.hough_vote_backward(grad, app, bins, list(nbins), k),
                 torch.ops.semcorr._hough_vote_backward(grad, app, bins, list(nbins), k), rtol=1e-12, atol=1e-13)
