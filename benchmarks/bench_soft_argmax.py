"""kernel_soft_argmax against SFNet's published algorithm (full-volume Gaussian, softmax, two weighted sums;
benchmarks/baselines_soft_argmax.py) at SFNet's 20x20 grid and a 40x40 grid, B = 1..8, forward and
forward+backward: time (pytest-benchmark) and peak extra memory of one call (RSS high-water mark reset just before
the call, benchmarks/memory.py; includes the output: the (B, Hs, Ws, 2) coordinates forward,
the volume-sized gradient with backward)."""
import pytest

from benchmarks import soft_argmax_impls as impls
from benchmarks.memory import peak_extra_bytes

IMPLS = {
    "ours": dict(fwd="ours", bwd="ours_fwd_bwd", layout="ours"),
    "sfnet_published": dict(fwd="sfnet_published", bwd="sfnet_published_fwd_bwd", layout="sfnet"),
}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("B", [1, 2, 4, 8])
@pytest.mark.parametrize("grid", [20, 40])
def test_kernel_soft_argmax(benchmark, impl, mode, B, grid):
    spec = IMPLS[impl]
    grad = mode == "fwd+bwd"
    func = spec["bwd" if grad else "fwd"]
    inputs = impls.make_inputs(B, grid, layout=spec["layout"], grad=grad)
    benchmark.group = "kernel_soft_argmax %s grid=%dx%d B=%d" % (mode, grid, grid, B)
    mem = peak_extra_bytes("benchmarks.soft_argmax_impls", func, B=B, grid=grid, layout=spec["layout"], grad=grad)
    benchmark.extra_info.update(op="kernel_soft_argmax", impl=impl, mode=mode, B=B, grid=grid,
                                input_bytes=B * grid ** 4 * 4, peak_extra_bytes=mem["extra"],
                                out_bytes=mem["out_bytes"])
    benchmark.pedantic(getattr(impls, func), args=inputs, rounds=5 if grid == 40 else 10, warmup_rounds=1)
