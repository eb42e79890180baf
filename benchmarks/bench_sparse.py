"""Sparse NC-Net's sparse path at the paper's resolutions: corr4d_topk in both directions (top-10) + the sparse
consensus stack (3x3x3x3 kernels, channels 16-16-1, symmetric) at 50x50 and 100x100 grids with C = 1024 (ResNet
layer3), B = 1: time (pytest-benchmark) and peak extra memory (RSS growth of one call in a fresh process,
memory.py), next to what the dense path needs: the bytes of the dense (Hs*Ws)^2 float32 volume, and the time
and memory of dense corr4d + torch.topk at 50x50 (at 100x100 the dense volume alone is 400 MB per channel).

Also importable as the impl module of memory.peak_extra_bytes (make_inputs + the functions below).
Total runtime ~2-3 minutes on 2 cores."""
import pytest
import torch

from benchmarks.baselines_sparse import dense_corr_topk
from benchmarks.memory import peak_extra_bytes

C = 1024
K = 10
_CONSENSUS = {}


def make_inputs(grid, C=C, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, C, grid, grid, generator=g), torch.randn(1, C, grid, grid, generator=g)


def _consensus():
    if "m" not in _CONSENSUS:
        from semcorr_ext.nn import SparseNeighConsensus

        torch.manual_seed(0)
        _CONSENSUS["m"] = SparseNeighConsensus(kernel_sizes=(3, 3, 3), channels=(16, 16, 1), symmetric=True).eval()
    return _CONSENSUS["m"]


@torch.no_grad()
def ours_topk(src, tgt):
    """corr4d_topk in both directions (values only returned)."""
    from semcorr_ext import ops

    v1, _ = ops.corr4d_topk(src, tgt, K)
    v2, _ = ops.corr4d_topk(tgt, src, K)
    return torch.cat([v1.reshape(-1), v2.reshape(-1)])


@torch.no_grad()
def ours_sparse_ncnet(src, tgt):
    """The whole sparse path: top-k both ways, union of the points, kernel maps, symmetric consensus stack."""
    from semcorr.models.sparse_ncnet import topk_union

    coords, vals = topk_union(src, tgt, K)
    return _consensus()(vals.unsqueeze(1), coords)


@torch.no_grad()
def ours_consensus_only(src, tgt):
    """Only the consensus stack (kernel maps + 6 sparse conv layers) on the precomputed points."""
    coords, vals = _points(src, tgt)
    return _consensus()(vals.unsqueeze(1), coords)


@torch.no_grad()
def _points(src, tgt):
    """The sparse points of (src, tgt), computed once per grid size (inputs are fixed per grid)."""
    from semcorr.models.sparse_ncnet import topk_union

    key = (src.shape[-1], "pts")
    if key not in _CONSENSUS:
        _CONSENSUS[key] = topk_union(src, tgt, K)
    return _CONSENSUS[key]


@torch.no_grad()
def dense_topk(src, tgt):
    """The dense path: full corr4d volume then torch.topk over the targets."""
    return dense_corr_topk(src, tgt, K)[0]


IMPLS = ["ours_topk", "ours_sparse_ncnet", "ours_consensus_only", "dense_topk"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("grid", [50, 100])
def test_sparse_ncnet(benchmark, impl, grid):
    if impl == "dense_topk" and grid > 50:
        pytest.skip("dense volume at 100x100 is 400 MB per channel; measured at 50x50 only")
    fn = globals()[impl]
    inputs = make_inputs(grid)
    n = grid * grid
    benchmark.group = "sparse ncnet grid=%dx%d C=%d k=%d" % (grid, grid, C, K)
    mem = peak_extra_bytes("benchmarks.bench_sparse", impl, grid=grid)
    coords, _ = _points(*inputs)
    benchmark.extra_info.update(op="sparse_ncnet", impl="ours" if impl == "ours_sparse_ncnet" else impl,
                                grid=grid, C=C, k=K, points=int(coords.shape[0]),
                                dense_volume_bytes=n * n * 4, peak_extra_bytes=mem["extra"],
                                out_bytes=mem["out_bytes"],
                                note="%d sparse points of %d (dense volume %.0f MiB)" % (coords.shape[0], n * n,
                                                                                        n * n * 4 / 2**20),
                                flops={"ours_topk": 4.0 * n * n * C, "dense_topk": 2.0 * n * n * C}.get(impl))
    benchmark.pedantic(fn, args=inputs, rounds=3 if grid == 50 else 1, warmup_rounds=1 if grid == 50 else 0)


def goals(benchmarks):
    """Sparse vs dense at each grid: time, peak extra memory, and the dense volume it avoids."""
    rows = {}
    for b in benchmarks:
        e = b.get("extra_info", {})
        if e.get("op") == "sparse_ncnet":
            rows[(e["grid"], b["name"].split("[")[-1].split("-")[0])] = (b["stats"]["min"], e)
    if not rows:
        return []
    lines = ["## sparse NC-Net (top-%d)" % K, "", "| grid | impl | time (s) | peak extra MiB | points | dense volume MiB |",
             "|---|---|---:|---:|---:|---:|"]
    for (grid, impl), (t, e) in sorted(rows.items()):
        lines.append("| %dx%d | %s | %.3f | %.1f | %d | %.0f |" % (grid, grid, impl, t, e["peak_extra_bytes"] / 2**20,
                                                                   e["points"], e["dense_volume_bytes"] / 2**20))
    return lines
