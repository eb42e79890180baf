"""corr4d against the GEMM floor (bare bmm on normalised inputs) and the published unfused pipelines, at the
papers' grid sizes (25x25, 50x50) with C=1024, B=1..4: time (pytest-benchmark) and peak extra memory (RSS
growth of one call in a fresh process, see memory.py). Run: `make bench` (writes benchmarks/RESULTS.md)."""
import pytest

from benchmarks import correlation_impls
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
    fn = getattr(correlation_impls, spec["func"])
    inputs = correlation_impls.make_inputs(B, C, grid, grid, normalised=spec["normalised"])
    benchmark.group = "corr4d grid=%dx%d C=%d B=%d" % (grid, grid, C, B)
    benchmark.extra_info.update(op="corr4d", impl=impl, B=B, grid=grid, C=C,
                                flops=2.0 * B * (grid * grid) ** 2 * C)
    mem = peak_extra_bytes("benchmarks.correlation_impls", spec["func"], B=B, C=C, H=grid, W=grid,
                           normalised=spec["normalised"])
    benchmark.extra_info.update(peak_extra_bytes=mem["extra"], out_bytes=mem["out_bytes"],
                                input_bytes=2 * B * C * grid * grid * 4)
    benchmark.pedantic(fn, args=inputs, rounds=5 if grid == 50 else 20, warmup_rounds=1)


def goals(benchmarks):
    """The foundation issue's targets: within 1.15x of the GEMM floor, faster than the unfused pipeline, peak
    extra memory no more than the output plus one normalised copy of each input."""
    rows = {}
    for b in benchmarks:
        e = b.get("extra_info", {})
        if e.get("op") == "corr4d":
            rows[(e["grid"], e["B"], e["impl"])] = (b["stats"]["min"], e)
    if not rows:
        return []
    lines = ["## corr4d", "", "| grid | B | ours_hpf / gemm_floor (goal <= 1.15) | unfused_hpf / ours_hpf (goal > 1) | "
             "unfused_ncnet / ours_ncnet | ours_hpf peak extra / (output + 2 normalised inputs) (goal <= 1) |",
             "|---|---|---:|---:|---:|---:|"]
    for grid, B in sorted({(g, b) for g, b, _ in rows}):
        get = lambda impl: rows.get((grid, B, impl), (None, {}))
        (t_ours, e_ours), (t_floor, _), (t_unf, _) = get("ours_hpf"), get("gemm_floor"), get("unfused_hpf")
        (t_on, _), (t_un, _) = get("ours_ncnet"), get("unfused_ncnet")
        if None in (t_ours, t_floor, t_unf, t_on, t_un):
            continue
        budget = e_ours["out_bytes"] + e_ours["input_bytes"]
        lines.append("| %dx%d | %d | %.2f | %.2f | %.2f | %.2f |" % (grid, grid, B, t_ours / t_floor, t_unf / t_ours,
                                                                 t_un / t_on, e_ours["peak_extra_bytes"] / budget))
    return lines
