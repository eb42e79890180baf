"""Zero-shot DINOv2 matching at high resolution (issue #16): correlation + windowed soft-argmax readout of two
(1, 768, g, g) feature maps (ViT-B/14 tokens) at g = 64 and 100 patch grids (16.8M and 100M volume cells),
without and with neighbourhood consensus; ours (semcorr.models.dino, banded ops.corr4d; consensus through
ops.corr4d_topk + ops.sparse_conv4d) against the plain full-volume PyTorch pipeline of GeoAware-SC's released
code (benchmarks/highres_impls.py; same outputs, checked by tests/test_dino_bench.py): time (pytest-benchmark)
and peak extra memory of one call (RSS growth in a fresh process, benchmarks/memory.py).

    OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_highres.py --benchmark-json=/tmp/highres.json
"""
import pytest

from benchmarks import highres_impls as impls
from benchmarks.memory import peak_extra_bytes

IMPLS = ("ours", "plain", "ours_consensus", "plain_consensus")
GRIDS = (64, 100)
#: memory of the machines the plain pipeline's failure point is computed for (bytes)
MACHINES = (("this machine (24 GiB RAM)", 24 << 30), ("an 80 GB GPU", 80 * 10**9))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("grid", GRIDS)
def test_highres(benchmark, impl, grid):
    inputs = impls.make_inputs(grid)
    consensus = impl.endswith("consensus")
    benchmark.group = "dino readout %s grid=%dx%d C=%d B=1" % ("+ consensus" if consensus else "(window)", grid,
                                                             grid, impls.C)
    mem = peak_extra_bytes("benchmarks.highres_impls", impl, grid=grid)
    benchmark.extra_info.update(op="highres", impl=impl, grid=grid, C=impls.C, consensus=consensus,
                                volume_bytes=grid ** 4 * 4, peak_extra_bytes=mem["extra"], out_bytes=mem["out_bytes"],
                                flops=2.0 * grid ** 4 * impls.C)
    benchmark.pedantic(getattr(impls, impl), args=inputs, rounds=1 if grid == 100 and consensus else 3,
                       warmup_rounds=0 if grid == 100 else 1)


def _fail_grid(bytes_per_cell, memory):
    """Largest square grid g whose g^4-cell pipeline fits in ``memory``."""
    return int((memory / bytes_per_cell) ** 0.25)


def goals(benchmarks):
    """Issue #16's targets at 100x100: peak memory at most 1/10 of the plain pipeline's and no slower; and the
    plain pipeline's failure point, from its measured bytes per volume cell."""
    rows = {}
    for b in benchmarks:
        e = b.get("extra_info", {})
        if e.get("op") == "highres":
            rows[(e["grid"], e["impl"])] = (b["stats"]["min"], e)
    if not rows:
        return []
    lines = ["## dino high-resolution readout (issue #16)", "",
             "| grid | consensus | plain time / ours (goal >= 1) | ours peak / plain peak (goal <= 0.10) | met |",
             "|---|---|---:|---:|---|"]
    per_cell = []
    for grid in sorted({g for g, _ in rows}):
        for suffix, label in (("", "no"), ("_consensus", "yes")):
            o, p = rows.get((grid, "ours" + suffix)), rows.get((grid, "plain" + suffix))
            if not (o and p):
                continue
            t_ratio = p[0] / o[0]
            m_ratio = o[1]["peak_extra_bytes"] / max(1, p[1]["peak_extra_bytes"])
            met = "yes" if t_ratio >= 1 and m_ratio <= 0.10 else "no"
            lines.append("| %dx%d | %s | %.2f | %.3f | %s |" % (grid, grid, label, t_ratio, m_ratio,
                                                               met if grid == max(GRIDS) else "(goal at 100x100)"))
            per_cell.append((label, grid, p[1]["peak_extra_bytes"] / p[1]["volume_bytes"] * 4, o[1]))
    if per_cell:
        lines += ["", "Plain pipeline's failure point: it holds about k float32 volume-sized tensors at once "
                  "(k = measured peak / (4 bytes x g^4)); it runs out of memory once k x 4 x g^4 bytes exceed the "
                  "device:", "", "| consensus | measured at | bytes per cell | largest grid on %s | on %s |"
                  % (MACHINES[0][0], MACHINES[1][0]), "|---|---|---:|---:|---:|"]
        for label, grid, bpc, _ in per_cell:
            if grid != max(GRIDS):
                continue
            lines.append("| %s | %dx%d | %.1f | %dx%d | %dx%d |" % (
                label, grid, grid, bpc, *(2 * (_fail_grid(bpc, MACHINES[0][1]),)),
                *(2 * (_fail_grid(bpc, MACHINES[1][1]),))))
    return lines
