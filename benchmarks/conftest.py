import os
import sys

import pytest
import torch

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")]


def gemm_gflops(n=2048, repeat=5):
    """The machine's fp32 GEMM throughput (GFLOP/s), the ceiling for compute-bound ops."""
    import time

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


@pytest.fixture(scope="session")
def machine_gemm_gflops():
    return gemm_gflops()


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["threads"] = torch.get_num_threads()
    machine_info["gemm_gflops_fp32"] = round(gemm_gflops(), 1)
    machine_info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
