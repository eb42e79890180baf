"""The CUDA host emulator (csrc/common/simt.h) on its self-test kernels (csrc/emu/selftest_kernel.cuh).

Correct kernels (tiled matmul, warp-shuffle reductions, atomic histogram, votes, shuffle variants) must give
exact results under every thread schedule and block order; buggy kernels must be caught: divergent or skipped
barriers raise, a missing barrier changes the result in a serial schedule, unwritten dynamic shared memory reads
as poison, shuffles from lanes outside the mask give poison plus a warning, and GPU hangs (deadlocks) raise
instead of hanging. Kernels that could hang a broken emulator run in a subprocess with a timeout.
"""
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

try:
    emu = importlib.import_module("semcorr_ext._emu")
except ImportError as e:  # pragma: no cover - only without the emulator build
    import glob

    import semcorr_ext

    if glob.glob(os.path.join(os.path.dirname(semcorr_ext.__file__), "_emu*.so")):
        raise  # built but not importable (a broken .so, a missing symbol): an error, never a skip
    pytest.skip("semcorr_ext._emu is not built (%s); build it with `python setup.py build_ext --inplace` "
                "without SEMCORR_NO_EMU=1" % e, allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.join(ROOT, "csrc", "emu", "selftest_kernel.cuh")
SCHEDULES = ["forward", "reverse", "parallel"]
ORDERS = [("forward", 0), ("reverse", 0), ("shuffle", 1), ("shuffle", 12345)]


def tagged_line(tag):
    """Line number of the statement tagged `SELFTEST-LINE: <tag>` in the self-test kernels."""
    with open(KERNELS) as f:
        hits = [i for i, line in enumerate(f, 1) if re.search(r"SELFTEST-LINE: %s\b" % re.escape(tag), line)]
    assert len(hits) == 1, (tag, hits)
    return hits[0]


@pytest.fixture(autouse=True)
def _default_settings():
    emu.set_schedule("forward")
    emu.set_block_order("forward")
    yield
    emu.set_schedule("forward")
    emu.set_block_order("forward")


def configure(schedule, order=("forward", 0)):
    emu.set_schedule(schedule)
    emu.set_block_order(order[0], order[1])


def int_valued(shape, lo, hi, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, shape, generator=g).to(dtype)


# ---- controls -----------------------------------------------------------------------------------------------
def test_controls_round_trip_and_reject_unknown_names():
    assert emu.get_schedule() == "forward"
    for s in SCHEDULES:
        emu.set_schedule(s)
        assert emu.get_schedule() == s
    emu.set_block_order("shuffle", 42)
    assert emu.get_block_order() == ("shuffle", 42)
    with pytest.raises(ValueError, match="parallel"):
        emu.set_schedule("backwards")
    with pytest.raises(ValueError, match="shuffle"):
        emu.set_block_order("random")
    assert emu.get_schedule() == "parallel"  # a rejected name leaves the setting alone


# ---- 1. tiled shared-memory matmul ----------------------------------------------------------------------------
def matmul_same_order(a, b):
    """float64 a @ b summing k in increasing order with one rounding per product and per sum, as the kernel."""
    a, b = a.double(), b.double()
    c = torch.zeros(a.shape[0], b.shape[1], dtype=torch.float64)
    for k in range(a.shape[1]):
        c += a[:, k:k + 1] * b[k:k + 1, :]
    return c


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "%s%d" % o)
def test_matmul_tiled_exact_float64(schedule, order):
    configure(schedule, order)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(37, 41, generator=g, dtype=torch.float64)
    b = torch.randn(41, 29, generator=g, dtype=torch.float64)
    c = emu.selftest_matmul_tiled(a, b)
    assert torch.equal(c, matmul_same_order(a, b))


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (16, 16, 16), (17, 33, 15), (5, 0, 3), (40, 20, 3)])
def test_matmul_tiled_exact_float32_integer_values(schedule, shape):
    configure(schedule, ("reverse", 0))
    M, K, N = shape
    a = int_valued((M, K), -8, 9, torch.float32, 1)
    b = int_valued((K, N), -8, 9, torch.float32, 2)
    c = emu.selftest_matmul_tiled(a, b)
    assert c.dtype == torch.float32
    assert torch.equal(c, (a.double() @ b.double()).float())  # integer-valued: exact in any order


# ---- 2. warp-shuffle sum and argmax -----------------------------------------------------------------------------
def check_row_reductions(x, threads):
    before = emu.warnings()
    sums, maxs, idx = emu.selftest_row_sum_argmax(x, threads)
    assert torch.equal(sums, x.sum(1))  # integer-valued data: exact whatever the order
    assert torch.equal(maxs, x.max(1).values)
    assert torch.equal(idx, x.argmax(1))  # torch returns the first maximum, as the kernel's tie-break
    assert emu.warnings() == before


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "%s%d" % o)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_sum_argmax_exact(schedule, order, dtype):
    configure(schedule, order)
    x = int_valued((6, 100), -9, 10, dtype, 3)  # many ties of the maximum
    check_row_reductions(x, 96)


@pytest.mark.parametrize("threads", [32, 64, 256])
@pytest.mark.parametrize("cols", [1, 31, 257])
def test_row_sum_argmax_shapes(threads, cols):
    x = int_valued((3, cols), -5, 6, torch.float32, cols)
    check_row_reductions(x, threads)


# ---- 3. atomic histogram ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "%s%d" % o)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_histogram_atomics_exact(schedule, order, dtype):
    configure(schedule, order)
    nbins, n = 37, 1000
    bins = int_valued((n,), -2, nbins + 3, torch.int32, 4)  # a few out-of-range bins are ignored
    w = int_valued((n,), -4, 5, dtype, 5)
    counts, wsums = emu.selftest_histogram(bins, w, nbins, 3, 64)
    ok = (bins >= 0) & (bins < nbins)
    assert torch.equal(counts, torch.bincount(bins[ok].long(), minlength=nbins).int())
    ref = torch.zeros(nbins, dtype=torch.float64).index_add_(0, bins[ok].long(), w[ok].double())
    assert torch.equal(wsums, ref.to(dtype))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_atomics_votes_and_syncthreads_count(schedule):
    configure(schedule, ("shuffle", 3))
    n, blocks, threads = 200, 2, 128  # the last 56 threads have no value and vote false
    v = int_valued((n,), -50, 51, torch.int32, 6)
    v[:32] = v[:32].abs() + 1  # warp 0: all positive
    v[64:96] = -v[64:96].abs()  # warp 2: none positive
    r = emu.selftest_atomic_vote(v, blocks, threads)
    pos = v > 0
    warps = torch.zeros(blocks * threads, dtype=torch.bool)
    warps[:n] = pos
    warps = warps.view(-1, 32)
    assert r["max"] == int(v.max()) and r["min"] == int(v.min())
    assert r["sum"] == int((v.long() + 1000000).sum())
    assert r["ballot_pos"] == r["count_pos"] == int(pos.sum())
    assert r["any_warps"] == int(warps.any(1).sum()) and r["any_warps"] < 8
    assert r["all_warps"] == int(warps.all(1).sum()) == 1
    assert r["cas_count"] == n


def shfl_reference(x, threads):
    """The CUDA semantics of the four shuffles of shfl_variants_kernel (see the kernel)."""
    out = torch.empty(x.numel(), 4, dtype=x.dtype)
    for i in range(x.numel()):
        base = i - i % 32
        lane = i % 32
        up = lane - 3 if lane % 8 >= 3 else lane
        down = lane + 5 if lane % 16 + 5 < 16 else lane
        xor = lane ^ 6
        idx = (lane & ~15) + ((lane * 7 + 1) % 16)
        for k, src in enumerate((up, down, xor, idx)):
            out[i, k] = x[base + src]
    return out


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.float64])
def test_shuffle_variants_and_widths(schedule, dtype):
    configure(schedule)
    x = (torch.arange(128) * 3 + 1).to(dtype)
    before = emu.warnings()
    y = emu.selftest_shfl_variants(x, 64)
    assert torch.equal(y, shfl_reference(x, 64))
    assert emu.warnings() == before


# ---- 5. a missing barrier -----------------------------------------------------------------------------------------
def neighbour_reference(x, threads):
    n = x.numel()
    blocks = (n + threads - 1) // threads
    xp = torch.zeros(blocks * threads, dtype=x.dtype)
    xp[:n] = x
    xp = xp.view(blocks, threads)
    return (xp + xp.roll(-1, dims=1)).reshape(-1)[:n]


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "%s%d" % o)
def test_missing_barrier_is_exposed_by_a_serial_schedule(order):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(300, generator=g) + 1.0
    threads = 64
    ref = neighbour_reference(x, threads)
    for schedule in SCHEDULES:  # with the barrier: right in every schedule
        configure(schedule, order)
        assert torch.equal(emu.selftest_neighbour_sum(x, True, threads), ref), schedule
    wrong = []
    for schedule in ["forward", "reverse"]:
        configure(schedule, order)
        wrong.append(not torch.equal(emu.selftest_neighbour_sum(x, False, threads), ref))
    assert any(wrong)


# ---- 6. dynamic shared memory is poisoned -------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32])
def test_unwritten_dynamic_shared_memory_reads_poison(schedule, dtype):
    configure(schedule)
    x = (torch.arange(100) + 1).to(dtype)
    y = emu.selftest_dynamic_smem_poison(x, 32)
    even = (torch.arange(100) % 32) % 2 == 0
    assert torch.equal(y[even], x[even])
    if dtype.is_floating_point:
        assert torch.isnan(y[~even]).all()
    else:
        assert (y[~even] == -1).all()


# ---- 7. shuffle from a lane outside the mask ----------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_shuffle_from_inactive_lane_gives_poison_and_warning(schedule, dtype):
    configure(schedule)
    emu.reset_warnings()
    assert emu.warnings() == 0
    x = (torch.arange(96) + 1).to(dtype)
    y = emu.selftest_shfl_inactive_lane(x, 96)
    lane = torch.arange(96) % 32
    lo, mid, hi = lane < 8, (lane >= 8) & (lane < 16), lane >= 16
    assert torch.equal(y[lo], x[lo.nonzero().squeeze(1) + 8])
    assert torch.equal(y[hi], x[hi])
    if dtype.is_floating_point:
        assert torch.isnan(y[mid]).all()
    else:
        assert (y[mid] == -559038737).all()  # int32(0xDEADBEEF)
    assert emu.warnings() == 8 * 3  # lanes 8-15 of each of the 3 warps
    emu.reset_warnings()
    assert emu.warnings() == 0


# ---- launch configuration -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "%s%d" % o)
def test_every_block_and_thread_runs_once(schedule, order):
    configure(schedule, order)
    hits, bad = emu.selftest_coverage((3, 2, 2), (4, 3, 2), 0)
    assert bad == 0
    assert torch.equal(hits, torch.ones(12 * 24, dtype=torch.int32))


# (grid, block, bytes of dynamic shared memory) a launch must refuse, and what it must say
BAD_LAUNCHES = [
    ((1, 1, 1), (1025, 1, 1), 0,
     r"emulated launch of coverage_kernel .*1025 threads per block exceed the limit of 1024"),
    ((1, 1, 1), (32, 33, 1), 0, r"1056 threads per block exceed"),
    ((1, 1, 1), (32, 1, 1), 49153, r"49153 bytes of dynamic shared memory exceed the 48 KB"),
    ((1, 1, 1), (1, 1, 65), 0, r"block dimensions exceed"),
    ((1, 1, 1), (0, 1, 1), 0, r"block is empty"),
    ((2, 0, 1), (32, 1, 1), 0, r"grid is empty"),
    ((1, 65536, 1), (32, 1, 1), 0, r"grid dimensions exceed"),
]


@pytest.mark.parametrize("grid,block,shared,match", BAD_LAUNCHES)
def test_launch_limits_are_checked_like_cuda(grid, block, shared, match):
    with pytest.raises(RuntimeError, match=match):
        emu.selftest_coverage(grid, block, shared)


def test_launches_at_the_limits_run():
    hits, bad = emu.selftest_coverage((1, 1, 1), (1024, 1, 1), 49152)
    assert bad == 0 and torch.equal(hits, torch.ones(1024, dtype=torch.int32))
    hits, bad = emu.selftest_coverage((2, 1, 1), (2, 2, 64), 0)
    assert bad == 0 and torch.equal(hits, torch.ones(512, dtype=torch.int32))


# ---- 4. and the GPU hangs: kernels that must raise (in a subprocess, so a broken emulator cannot stall the suite) ----
# each buggy kernel: what its error must say, and the tagged lines of selftest_kernel.cuh it must name
BUGS = {
    "divergent_barrier": (["__syncthreads reached from different lines"], ["divergent-even", "divergent-odd"]),
    "early_exit_barrier": (["returned"], ["early-exit-barrier"]),
    "shfl_exited_lane": (["returned", "0xffffffff"], ["exited-lane"]),
    "shfl_barrier_deadlock": (["deadlock", "threads 0-15, 32-47 wait at __shfl_down_sync at"],
                              ["deadlock-shfl", "deadlock-barrier"]),
    # an exception in a kernel thread aborts the launch
    "throwing": (["thread (3,0,0)", "selftest: thread 3 throws"], []),
}

_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    import torch
    emu = importlib.import_module("semcorr_ext._emu")
    out = {}
    for schedule in %r:
        emu.set_schedule(schedule)
        for which, threads in %r:
            try:
                emu.selftest_buggy(which, threads)
                out[which + "/" + schedule] = None
            except RuntimeError as e:
                out[which + "/" + schedule] = str(e)
            sys.stderr.write("done %%s/%%s\\n" %% (which, schedule))
    # the emulator still works after failed launches
    a = torch.arange(12.).view(3, 4)
    out["after"] = bool(torch.equal(emu.selftest_matmul_tiled(a, a.t().contiguous()), a @ a.t()))
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def buggy_results():
    cases = [(w, 64) for w in BUGS]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    try:
        p = subprocess.run([sys.executable, "-c", _SCRIPT % (SCHEDULES, cases)], capture_output=True, text=True,
                           timeout=300, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail("the emulator hung on a buggy kernel instead of raising; progress:\n%s" % (e.stderr or ""))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def message(results, which, schedule):
    msg = results[which + "/" + schedule]
    assert msg is not None, "%s ran to completion under %s instead of raising" % (which, schedule)
    assert msg.startswith("emulated launch of %s_kernel" % which), msg
    return msg


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("which", list(BUGS))
def test_buggy_kernel_raises_and_names_the_lines(buggy_results, which, schedule):
    msg = message(buggy_results, which, schedule)
    says, tags = BUGS[which]
    for text in says:
        assert text in msg
    for tag in tags:
        assert "selftest_kernel.cuh:%d" % tagged_line(tag) in msg


def test_emulator_works_after_failed_launches(buggy_results):
    assert buggy_results["after"] is True
