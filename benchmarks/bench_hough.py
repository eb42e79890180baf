"""hough_match against HPF's published rhm (per-source Hough table via index_add, a materialised (Ns, Nt)
bin-id matrix, conv2d, index_select) at 1,000, 3,600 and 10,000 hyperpixels per image, CPU: time
(pytest-benchmark) and peak extra memory (RSS growth of one call in a fresh process, see memory.py).
Run: `python -m pytest benchmarks/bench_hough.py --benchmark-json=...`."""
import pytest

from benchmarks import hough_impls
from benchmarks.memory import peak_extra_bytes

IMPLS = {"ours": "ours", "published_rhm": "published_rhm"}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("n", [1000, 3600, 10000])
def test_hough_match(benchmark, impl, n):
    func = IMPLS[impl]
    fn = getattr(hough_impls, func)
    inputs = hough_impls.make_inputs(n)
    benchmark.group = "hough_match N=%d hyperpixels per image" % n
    mem = peak_extra_bytes("benchmarks.hough_impls", func, n=n)
    app_bytes = n * n * 4
    benchmark.extra_info.update(op="hough_match", impl=impl, n=n, peak_extra_bytes=mem["extra"],
                                out_bytes=mem["out_bytes"], input_bytes=app_bytes,
                                hough_space_bytes=8192 * 4)
    rounds = {1000: 10, 3600: 3, 10000: 1}[n]
    if impl != "ours":
        rounds = max(1, rounds // 3)
    benchmark.pedantic(fn, args=inputs, rounds=rounds, warmup_rounds=1 if n < 10000 else 0)
