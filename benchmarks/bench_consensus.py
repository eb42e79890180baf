"""conv4d / NeighConsensus against NC-Net's algorithm (a Python loop of conv3d over the first dim, see
baselines_consensus.py): each consensus layer shape of NC-Net (1->16, 16->16, 16->1, k = 5) and the
symmetric [5, 5, 5] / [16, 16, 1] stack at 15^4, 20^4 and 25^4 (NC-Net's 400 px images give 25x25
grids), forward and forward+backward (the weight gradients, and the input gradient for single layers).
Time (pytest-benchmark), achieved GFLOP/s (report.py, vs the machine's GEMM) and, at 20^4, peak extra memory
(RSS growth of one call in a fresh process, memory.py). Runtime ~3-4 min on 2 cores (1 round at 25^4)."""
import pytest

from benchmarks import consensus_impls as ci
from benchmarks.memory import peak_extra_bytes

GRIDS = [15, 20, 25]
LAYERS = ["1-16", "16-16", "16-1", "stack"]
IMPLS = {("ours", False): "ours", ("ncnet", False): "ncnet", ("ours", True): "ours_fwd_bwd",
         ("ncnet", True): "ncnet_fwd_bwd"}


@pytest.mark.parametrize("impl", ["ours", "ncnet"])
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd_bwd"])
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("grid", GRIDS)
def test_conv4d(benchmark, impl, backward, layer, grid):
    func = IMPLS[(impl, backward)]
    fn = getattr(ci, func)
    inputs = ci.make_inputs(layer, grid, grad=backward)
    name = "symmetric NeighConsensus [5,5,5]/[16,16,1]" if layer == "stack" else "conv4d %s k=5" % layer
    benchmark.group = "%s %s grid=%d^4" % (name, "forward+backward" if backward else "forward", grid)
    benchmark.extra_info.update(op="conv4d" if layer != "stack" else "neigh_consensus", impl=impl, layer=layer,
                                grid=grid, backward=backward, flops=ci.flops(layer, grid, backward=backward))
    if grid == 20:
        mem = peak_extra_bytes("benchmarks.consensus_impls", func, layer=layer, grid=grid, grad=backward)
        benchmark.extra_info.update(peak_extra_bytes=mem["extra"], out_bytes=mem["out_bytes"])
    if backward:
        def run():
            for t in list(inputs[1]) + list(inputs[2]) + [inputs[0]]:
                t.grad = None
            return fn(*inputs)
    else:
        def run():
            return fn(*inputs)
    heavy = grid == 25 or (layer == "stack" and backward)
    benchmark.pedantic(run, rounds=1 if heavy else 3, warmup_rounds=0 if heavy else 1)
