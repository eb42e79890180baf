"""Every op family on a CUDA GPU against the published algorithm's GPU path (the same baselines as the CPU
benchmarks, run on the device), under the precision settings a user meets: float32 exact (TF32 off), TF32
(PyTorch's switches on: cuBLAS/cuDNN use tensor cores for the baselines) and bfloat16 inputs. Time is measured
with CUDA events around one call (median of the rounds), memory as the peak of
``torch.cuda.max_memory_allocated`` above the inputs. Skipped without a GPU (none on the development
machines); `make gpu-check` runs it and writes benchmarks/GPU.md."""
import contextlib

import pytest
import torch

from benchmarks import baselines_consensus, consensus_impls, correlation_impls, hough_impls, soft_argmax_impls
from benchmarks.baselines_correlation import ncnet_feature_correlation, ncnet_feature_l2norm, ncnet_mutual_matching
from semcorr_ext import ops

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")

PRECISIONS = ["fp32", "tf32", "bf16"]


@contextlib.contextmanager
def precision(mode):
    """fp32: exact float32 everywhere; tf32: PyTorch's TF32 switches on; bf16: inputs in bfloat16 (ops that
    accept it) with float32 accumulation."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        yield torch.bfloat16 if mode == "bf16" else torch.float32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _cuda(xs, dtype):
    out = []
    for x in xs:
        if isinstance(x, (list, tuple)):
            out.append(type(x)(_cuda(x, dtype)))
        elif torch.is_tensor(x):
            out.append(x.detach().to("cuda", dtype if x.is_floating_point() else x.dtype))
        else:
            out.append(x)
    return out


def cuda_time_and_memory(fn, args, rounds=10):
    """(median milliseconds by CUDA events, peak bytes allocated above the inputs) of fn(*args)."""
    fn(*args)  # warm-up: cuBLAS/cuDNN handles, autotuning
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(*args)
    torch.cuda.synchronize()
    return sorted(times)[len(times) // 2], torch.cuda.max_memory_allocated() - base


# (family, impl) -> (make inputs on the CPU, function, supports bf16)
CASES = {
    ("corr4d hpf C=1024 50x50", "ours"): (lambda: correlation_impls.make_inputs(1, 1024, 50, 50),
                                          correlation_impls.ours_hpf, True),
    ("corr4d hpf C=1024 50x50", "published"): (lambda: correlation_impls.make_inputs(1, 1024, 50, 50),
                                               correlation_impls.unfused_hpf, True),
    ("NeighConsensus 25^4", "ours"): (lambda: consensus_impls.make_inputs("stack", 25), consensus_impls.ours, True),
    ("NeighConsensus 25^4", "published"): (lambda: consensus_impls.make_inputs("stack", 25), consensus_impls.ncnet,
                                           True),
    ("max_pool4d k=2 50^4", "ours"): (lambda: (torch.rand(1, 1, 50, 50, 50, 50),), lambda x: ops.max_pool4d(x, 2),
                                      True),
    ("max_pool4d k=2 50^4", "published"): (lambda: (torch.rand(1, 1, 50, 50, 50, 50),),
                                           lambda x: baselines_consensus.ncnet_maxpool4d(x, 2), True),
    ("mutual_matching 50^4", "ours"): (lambda: (torch.rand(1, 1, 50, 50, 50, 50),), ops.mutual_matching, True),
    ("mutual_matching 50^4", "published"): (lambda: (torch.rand(1, 1, 50, 50, 50, 50),),
                                            ncnet_mutual_matching, True),
    ("hough_match 3600", "ours"): (lambda: hough_impls.make_inputs(3600), hough_impls.ours, False),
    ("hough_match 3600", "published"): (lambda: hough_impls.make_inputs(3600), hough_impls.published_rhm, False),
    ("kernel_soft_argmax 40x40 B=4", "ours"): (lambda: soft_argmax_impls.make_inputs(4, 40),
                                               soft_argmax_impls.ours, True),
    ("kernel_soft_argmax 40x40 B=4", "published"): (lambda: soft_argmax_impls.make_inputs(4, 40, layout="sfnet"),
                                                    soft_argmax_impls.sfnet_published, True),
    ("corr4d_topk k=10 C=1024 50x50", "ours"): (lambda: correlation_impls.make_inputs(1, 1024, 50, 50),
                                                lambda a, b: ops.corr4d_topk(a, b, 10), True),
    ("corr4d_topk k=10 C=1024 50x50", "published"): (
        lambda: correlation_impls.make_inputs(1, 1024, 50, 50),
        lambda a, b: torch.topk(ncnet_feature_correlation(ncnet_feature_l2norm(a), ncnet_feature_l2norm(b)).flatten(4), 10),
        True),
}


@pytest.mark.parametrize("mode", PRECISIONS)
@pytest.mark.parametrize("family,impl", list(CASES))
def test_gpu(benchmark, family, impl, mode):
    make, fn, bf16 = CASES[(family, impl)]
    if mode == "bf16" and not bf16:
        pytest.skip("%s takes no bfloat16 input" % family)
    with precision(mode) as dtype:
        args = _cuda(make(), dtype)
        ms, peak = cuda_time_and_memory(fn, args)
        benchmark.group = "GPU %s [%s]" % (family, mode)
        benchmark.extra_info.update(op=family, impl=impl, precision=mode, cuda_ms=ms, cuda_peak_bytes=peak,
                                    device=torch.cuda.get_device_name(0))

        def run():
            fn(*args)
            torch.cuda.synchronize()

        benchmark.pedantic(run, rounds=3, warmup_rounds=1)
