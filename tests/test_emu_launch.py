"""Large-launch paths, block orders and deterministic mode of the emulated CUDA kernels (issue #20 deliverable 4,
issue #17 deliverable 4).

* `emu.set_launch_limits(max_grid_blocks, max_chunk_elements)` lowers the grid caps of the launch code (CUDA:
  4096 blocks for the Hough passes, 65535 for mutual_matching's element-wise passes and the gathers) and the
  chunk size of gather_windows4d_linear (CUDA: 2^24 elements), so the grid-stride and chunk loops, which on a
  GPU only run past ~1M matches / 16M elements, run here on tiny inputs.
* Every backward kernel (and the forwards) runs under reversed and shuffled block orders: a result that depends
  on which block runs first (a race between blocks, a missing zero-fill) shows up as a difference.
* `torch.use_deterministic_algorithms(True)`: the kernels with float atomics (the Hough passes) raise the alert
  naming the op; every other kernel is deterministic, and its result is bitwise the same in every block order.
"""
import pytest
import torch

pytestmark = pytest.mark.emu

O = torch.ops.semcorr


def rnd(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.fixture
def limits(emu):
    """Sets launch limits for one test and restores the CUDA values afterwards."""
    yield emu.set_launch_limits
    emu.set_launch_limits(0, 0)


@pytest.fixture
def block_order(emu):
    yield emu.set_block_order
    emu.set_block_order("forward", 0)


def test_launch_limits_setting(emu, limits):
    assert emu.get_launch_limits() == (0, 0)
    limits(3, 100)
    assert emu.get_launch_limits() == (3, 100)
    with pytest.raises(ValueError, match="limits must be >= 0"):
        emu.set_launch_limits(-1, 0)


def _hough_case():
    g = torch.Generator().manual_seed(0)
    app = torch.rand(1, 23, 29, generator=g, dtype=torch.float64)  # 667 matches: 3 blocks of 256
    sc, tc = torch.rand(1, 23, 2, generator=g) * 50, torch.rand(1, 29, 2, generator=g) * 40
    return app, sc, tc, ([50.0, 50.0], [40.0, 40.0], 600, True)  # ~600 bins: 3 blocks of the smoothing pass


def _windows_case():
    g = torch.Generator().manual_seed(1)
    corr = rnd(1, 4, 5, 4, 5, seed=2)
    cand = torch.stack([torch.randint(-1, 5, (1, 4, 5, 3), generator=g), torch.randint(-1, 6, (1, 4, 5, 3), generator=g)],
                       -1)  # 60 windows of 81 taps: 4860 outputs = 19 blocks
    pts = torch.stack([torch.zeros(10, dtype=torch.long)] + [torch.randint(-1, n + 1, (10,), generator=g)
                                                             for n in corr.shape[1:]], 1)
    return corr, cand, pts


# name -> (emulated call, CPU reference call); all float64, every output compared exactly or to 1e-12.
def _cases(emu):
    app, sc, tc, hargs = _hough_case()
    hgrad = rnd(*app.shape, seed=3)
    bins = torch.randint(-1, 700, app.shape, generator=torch.Generator().manual_seed(4))
    hk = rnd(5, seed=5).abs()
    corr, cand, pts = _windows_case()
    wgrad = rnd(1, 4, 5, 3, 3, 3, 3, 3, seed=6)
    pgrad = rnd(10, 3, 3, 3, 3, seed=7)
    weight, bias = rnd(2, 3, 3, 3, 3, seed=8), rnd(2, seed=9)
    mm = rnd(2, 4, 5, 6, 7, seed=10).abs()  # 1680 elements: 7 blocks of 256
    mgrad = rnd(*mm.shape, seed=11)
    return {
        "hough_match": (lambda: emu.hough_match(app, sc, tc, *hargs), lambda: O.hough_match(app, sc, tc, *hargs)),
        "hough_match_backward": (lambda: emu.hough_match_backward(hgrad, app, sc, tc, *hargs),
                                 lambda: O._hough_match_backward(hgrad, app, sc, tc, *hargs)),
        "hough_vote": (lambda: emu.hough_vote(app, bins, [700], hk), lambda: O.hough_vote(app, bins, [700], hk)),
        "hough_vote_backward": (lambda: emu.hough_vote_backward(hgrad, app, bins, [700], hk),
                                lambda: O._hough_vote_backward(hgrad, app, bins, [700], hk)),
        "mutual_matching": (lambda: emu.mutual_matching(mm, 1e-5), lambda: O.mutual_matching(mm, 1e-5)),
        "mutual_matching_backward": (lambda: emu.mutual_matching_backward(mgrad, mm, 1e-5),
                                     lambda: O._mutual_matching_backward(mgrad, mm, 1e-5)),
        "gather_windows4d": (lambda: emu.gather_windows4d(corr, cand, 3), lambda: O.gather_windows4d(corr, cand, 3)),
        "gather_windows4d_backward": (lambda: emu.gather_windows4d_backward(wgrad, cand, list(corr.shape), 3),
                                      lambda: O._gather_windows4d_backward(wgrad, cand, list(corr.shape), 3)),
        "gather_windows4d_points": (lambda: emu.gather_windows4d_points(corr, pts, 3),
                                    lambda: O.gather_windows4d_points(corr, pts, 3)),
        "gather_windows4d_points_backward": (
            lambda: emu.gather_windows4d_points_backward(pgrad, pts, list(corr.shape), 3),
            lambda: O._gather_windows4d_points_backward(pgrad, pts, list(corr.shape), 3)),
        "gather_windows4d_linear": (lambda: emu.gather_windows4d_linear(corr, pts, weight, bias),
                                    lambda: O.gather_windows4d_linear(corr, pts, weight, bias)),
    }


LOOPED = ["hough_match", "hough_match_backward", "hough_vote", "hough_vote_backward", "mutual_matching",
          "mutual_matching_backward", "gather_windows4d", "gather_windows4d_backward", "gather_windows4d_points",
          "gather_windows4d_points_backward", "gather_windows4d_linear"]


def _close(got, ref):
    got = got if isinstance(got, (tuple, list)) else (got,)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", LOOPED)
@pytest.mark.parametrize("blocks", [1, 2])
def test_grid_stride_loops_under_a_lowered_grid_cap(emu, limits, name, blocks):
    """1 block: one block walks the whole range; 2 blocks: the stride is 2 * 256 threads."""
    call, ref = _cases(emu)[name]
    expected = ref()
    limits(blocks, 0)
    _close(call(), expected)


def test_gather_windows4d_linear_chunk_loop(emu, limits):
    corr, _, pts = _windows_case()
    weight, bias = rnd(2, 3, 3, 3, 3, seed=8), rnd(2, seed=9)
    expected = O.gather_windows4d_linear(corr, pts, weight, bias)
    for chunk in (81, 3 * 81, 4 * 81 + 5):  # 1, 3 and 4 windows per chunk over 10 points (a partial last chunk)
        limits(0, chunk)
        _close(emu.gather_windows4d_linear(corr, pts, weight, bias), expected)
        limits(2, chunk)  # chunks and grid-stride together
        _close(emu.gather_windows4d_linear(corr, pts, weight, bias), expected)


def _backward_cases(emu):
    """Every backward kernel (and the forwards it needs) on small float64 inputs: name -> emulated call."""
    src, tgt = rnd(2, 5, 3, 4), rnd(2, 5, 4, 3, seed=1)
    cargs = (True, False, 1.0, 1e-6)
    cout = O.corr4d(src, tgt, *cargs)
    cgrad = rnd(*cout.shape, seed=2)
    x, w = rnd(1, 2, 4, 3, 3, 4, seed=3), rnd(3, 2, 3, 3, 3, 3, seed=4)
    pad = [1, 1, 1, 1]
    xgrad = rnd(1, 3, 4, 3, 3, 4, seed=5)
    px = rnd(1, 2, 4, 4, 4, 4, seed=6)
    pv, pa = O.max_pool4d(px, [2, 2, 2, 2])
    pgrad = rnd(*pv.shape, seed=7)
    ts, tt = rnd(2, 6, 5, 7, seed=8), rnd(2, 6, 7, 8, seed=9)
    tv, ti = O.corr4d_topk(ts, tt, 5, True, 1e-6)
    tgrad = rnd(*tv.shape, seed=10)
    coords = torch.tensor([[b, i, j, k, l] for b in range(2) for i in range(3) for j in range(2) for k in range(2)
                           for l in range(3)])
    maps = O.kernel_map4d(coords, [3])
    sf, sw = rnd(72, 3, seed=11), rnd(4, 3, 3, 3, 3, 3, seed=12)
    sgrad = rnd(72, 4, seed=13)
    ks = rnd(2, 3, 4, 5, 6, seed=14)
    kgrad = rnd(2, 3, 4, 2, seed=15)
    cases = {
        "corr4d_backward": lambda: emu.corr4d_backward(cgrad, src, tgt, cout, *cargs),
        "conv4d_backward": lambda: emu.conv4d_backward(xgrad, x, w, pad, [True, True, True]),
        "max_pool4d_backward": lambda: emu.max_pool4d_backward(pgrad, pa, list(px.shape), [2, 2, 2, 2]),
        "corr4d_topk_backward": lambda: emu.corr4d_topk_backward(tgrad, ts, tt, tv, ti, True, 1e-6),
        "sparse_conv4d_backward": lambda: emu.sparse_conv4d_backward(sgrad, sf, sw, *maps),
        "kernel_soft_argmax_backward": lambda: emu.kernel_soft_argmax_backward(kgrad, ks, 50.0, 5.0, True),
    }
    for name, (call, _) in _cases(emu).items():
        cases.setdefault(name, call)
    return cases


BACKWARDS = ["corr4d_backward", "conv4d_backward", "max_pool4d_backward", "corr4d_topk_backward",
             "sparse_conv4d_backward", "kernel_soft_argmax_backward", "mutual_matching_backward",
             "gather_windows4d_backward", "gather_windows4d_points_backward", "hough_match_backward",
             "hough_vote_backward"]
ATOMIC = {"hough_match", "hough_match_backward", "hough_vote", "hough_vote_backward"}


@pytest.mark.parametrize("name", BACKWARDS)
def test_backward_kernels_under_reversed_and_shuffled_block_orders(emu, block_order, limits, name):
    call = _backward_cases(emu)[name]
    expected = call()
    for order, seed in (("reverse", 0), ("shuffle", 1), ("shuffle", 7)):
        block_order(order, seed)
        got = call()
        if name in ATOMIC:  # float atomics: the order of additions may differ in the last bits
            _close(got, expected)
        else:  # every other kernel is deterministic: bitwise equal
            for a, b in zip(got if isinstance(got, (tuple, list)) else (got,),
                            expected if isinstance(expected, (tuple, list)) else (expected,)):
                assert torch.equal(a, b), (name, order, seed)
    if name in LOOPED:  # and with the grid-stride loops running, in reverse
        limits(2, 0)
        block_order("reverse", 0)
        _close(call(), expected)


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("name", sorted(ATOMIC))
def test_deterministic_mode_alerts_on_atomic_kernels(emu, deterministic, name):
    call = _backward_cases(emu)[name]
    op = ("_" + name) if name.endswith("backward") else name
    with pytest.raises(RuntimeError, match=r"semcorr::%s \(CUDA: float atomics\)" % op):
        call()


@pytest.mark.parametrize("name", [n for n in BACKWARDS if n not in ATOMIC] + ["mutual_matching", "gather_windows4d",
                                                                             "gather_windows4d_points",
                                                                             "gather_windows4d_linear"])
def test_deterministic_mode_runs_every_other_kernel_bitwise_reproducibly(emu, deterministic, block_order, name):
    call = _backward_cases(emu)[name]
    first = call()
    block_order("shuffle", 3)
    again = call()
    for a, b in zip(first if isinstance(first, (tuple, list)) else (first,),
                    again if isinstance(again, (tuple, list)) else (again,)):
        assert torch.equal(a, b)
