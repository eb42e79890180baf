"""corr4d against the GEMM floor (bare bmm on normalised inputs) and the published unfused pipelines, at the
papers' grid sizes (25x25, 50x50) with C=1024, B=1..4: time (pytest-benchmark) and peak extra memory (RSS
growth of one call in a fresh process, see memory.py). Run: `make bench` (writes benchmarks/RESULTS.md)."""
import pytest

from benchmarks import corr_impls
from benchmarks.memory import peak_extra_bytes

C = 1024
IMPLS = {
    "ours_hpf": dict(func="ours_hpf", normalised=False),
    "unfused_hpf": dict(func="unfused_hpf", normalised=False),
    "ours_ncnet": dict(func="ours_ncnet", normalised=False),
    "unfused_ncnet": dict(func="unfused_ncnet", normalised=False),
    "gemm_floor": dict(func="gemm_floor", normalised=True),
}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("B", [1, 2, 4])
@pytest.mark.parametrize("grid", [25, 50])
def test_corr4d(benchmark, impl, B, grid):
    spec = IMPLS[impl]
    fn = getattr(corr_impls, spec["func"])
    inputs = corr_impls.make_inputs(B, C, grid, grid, normalised=spec["normalised"])
    benchmark.group = "corr4d grid=%dx%d C=%d B=%d" % (grid, grid, C, B)
    benchmark.extra_info.update(op="corr4d", impl=impl, B=B, grid=grid, C=C,
                                flops=2.0 * B * (grid * grid) ** 2 * C)
    mem = peak_extra_bytes("benchmarks.corr_impls", spec["func"], B=B, C=C, H=grid, W=grid,
                           normalised=spec["normalised"])
    benchmark.extra_info.update(peak_extra_bytes=mem["extra"], out_bytes=mem["out_bytes"],
                                input_bytes=2 * B * C * grid * grid * 4)
    benchmark.pedantic(fn, args=inputs, rounds=5 if grid == 50 else 20, warmup_rounds=1)
