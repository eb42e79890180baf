"""The CPU bfloat16 path of the GEMM-shaped ops against their float32 path, in one run (issue #18): each op at a
published size, forward and forward+backward, in both dtypes; and the machine's roofs, torch.mm 2048^3 in
bfloat16 and in float32 (the speed-up an op can hope for is the ratio of the two); corr4d and conv4d also with
bfloat16 inputs and `out_dtype=torch.float32` (what autocast runs, docs/OPS.md#precision). Run: `make bench`, or
`python -m pytest benchmarks/bench_bf16.py -q --benchmark-json=bf16.json`."""
import pytest
import torch

from semcorr_ext import ops

BF16 = torch.bfloat16
DTYPES = {"float32": torch.float32, "ours_bf16": BF16}
FLOAT32_OUT = ("corr4d", "conv4d")  # ops with out_dtype: impl "ours_bf16_f32out"


def _g(seed):
    return torch.Generator().manual_seed(seed)


def corr4d_case(dtype):
    # HPF's relu(cos)^3 on 25x25 grids of C = 1024 features
    src, tgt = torch.rand(1, 1024, 25, 25, generator=_g(0)), torch.rand(1, 1024, 25, 25, generator=_g(1))
    return ((lambda s, t, **kw: ops.corr4d(s, t, relu=True, power=3.0, eps=0.0, **kw)), [src, tgt],
            2.0 * 625 * 625 * 1024)


def corr4d_topk_case(dtype):
    # Sparse NC-Net's top-k on 50x50 grids, C = 1024, k = 10
    src, tgt = torch.rand(1, 1024, 50, 50, generator=_g(0)), torch.rand(1, 1024, 50, 50, generator=_g(1))
    return (lambda s, t: ops.corr4d_topk(s, t, 10)[0]), [src, tgt], 2.0 * 2500 * 2500 * 1024


def conv4d_case(dtype):
    # NC-Net's middle consensus layer 16 -> 16, k = 3, on a 15^4 volume
    x = torch.rand(1, 16, 15, 15, 15, 15, generator=_g(0))
    w = torch.randn(16, 16, 3, 3, 3, 3, generator=_g(1)) / 36
    b = torch.rand(16, generator=_g(2))
    return ops.conv4d, [x, w, b], 2.0 * 15**4 * 16 * 16 * 81


def sparse_conv4d_case(dtype, channels=16):
    # Sparse NC-Net's 16 -> 16, k = 3 layer on 20000 points of a 25^4 volume (bf16: float32 inside, a thin layer),
    # and a 48-channel one (bf16 GEMMs)
    cells = torch.randperm(25**4, generator=_g(0))[:20000]
    coords = torch.stack([torch.zeros_like(cells)] + [(cells // 25**d) % 25 for d in (3, 2, 1, 0)], 1)
    kmap = ops.kernel_map4d(coords, 3)
    feats = torch.rand(20000, channels, generator=_g(1))
    w = torch.randn(channels, channels, 3, 3, 3, 3, generator=_g(2)) / (9 * channels**0.5)
    b = torch.rand(channels, generator=_g(3))
    pairs = kmap.in_rows.numel()
    return (lambda f, w_, b_: ops.sparse_conv4d(f, None, w_, b_, kernel_map=kmap)), [feats, w, b], \
        2.0 * pairs * channels * channels


def gather_windows4d_linear_case(dtype):
    # PMNC's first scoring layer: 5^4 windows at 20000 points of a 25^4 volume, 16 channels
    corr = torch.rand(1, 25, 25, 25, 25, generator=_g(0))
    points = torch.cat([torch.zeros(20000, 1, dtype=torch.long), torch.randint(0, 25, (20000, 4), generator=_g(1))], 1)
    w = torch.randn(16, 5, 5, 5, 5, generator=_g(2)) / 25
    b = torch.rand(16, generator=_g(3))
    return (lambda c, w_, b_: ops.gather_windows4d_linear(c, points, w_, b_)), [corr, w, b], 2.0 * 20000 * 625 * 16


CASES = {"corr4d": corr4d_case, "corr4d_topk": corr4d_topk_case, "conv4d": conv4d_case,
         "sparse_conv4d": sparse_conv4d_case, "sparse_conv4d_48ch": lambda dt: sparse_conv4d_case(dt, 48),
         "gather_windows4d_linear": gather_windows4d_linear_case}


@pytest.mark.parametrize("passes", ["forward", "forward+backward"])
@pytest.mark.parametrize("op,impl", [(op, impl) for op in CASES for impl in DTYPES] +
                         [(op, "ours_bf16_f32out") for op in FLOAT32_OUT])
def test_bf16(benchmark, op, passes, impl):
    dtype = DTYPES.get(impl, BF16)
    fn, inputs, flops = CASES[op](dtype)
    if impl == "ours_bf16_f32out":
        fn = (lambda f: lambda *a: f(*a, out_dtype=torch.float32))(fn)
    xs = [t.to(dtype).requires_grad_(passes != "forward") for t in inputs]

    def run():
        out = fn(*xs)
        if passes != "forward":
            out.sum().backward()
        return out

    benchmark.group = "bf16 vs float32: %s %s" % (op, passes)
    # the backward of every op costs about two forwards (two GEMMs per forward GEMM)
    benchmark.extra_info.update(op="bf16", kernel=op, passes=passes, impl=impl,
                                flops=flops * (1 if passes == "forward" else 3))
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["gemm_roof_fp32", "gemm_roof_bf16"])
def test_gemm_roof(benchmark, impl):
    dtype = BF16 if impl.endswith("bf16") else torch.float32
    n = 2048
    a, b = torch.randn(n, n, generator=_g(0)).to(dtype), torch.randn(n, n, generator=_g(1)).to(dtype)
    benchmark.group = "bf16 vs float32: GEMM roofs (torch.mm 2048^3)"
    benchmark.extra_info.update(op="bf16_roof", impl=impl, flops=2.0 * n**3)
    benchmark.pedantic(torch.mm, args=(a, b), rounds=5, warmup_rounds=1)


def goals(benchmarks):
    """Per op and pass: the bfloat16 speed-up over float32, and each path's GFLOP/s against its own GEMM roof."""
    rows, roofs = {}, {}
    for b in benchmarks:
        e = b.get("extra_info", {})
        if e.get("op") == "bf16":
            rows[(e["kernel"], e["passes"], e["impl"])] = (b["stats"]["min"], e["flops"])
        elif e.get("op") == "bf16_roof":
            roofs[e["impl"]] = e["flops"] / b["stats"]["min"] / 1e9
    if not rows:
        return []
    r32, r16 = roofs.get("gemm_roof_fp32"), roofs.get("gemm_roof_bf16")
    lines = ["## CPU bfloat16 vs float32", "",
             "GEMM roofs (torch.mm 2048^3): float32 %s GFLOP/s, bfloat16 %s GFLOP/s (ratio %s)." % (
                 "%.1f" % r32 if r32 else "-", "%.1f" % r16 if r16 else "-",
                 "%.2fx" % (r16 / r32) if r32 and r16 else "-"), "",
             "| op | pass | float32 (ms) | bfloat16 (ms) | speed-up | float32 % of fp32 roof | bf16 % of bf16 roof "
             "| bf16 in, float32 out (ms) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for op, passes in sorted({(k, p) for k, p, _ in rows}):
        f = rows.get((op, passes, "float32"))
        h = rows.get((op, passes, "ours_bf16"))
        if not (f and h):
            continue
        pct = lambda t, fl, roof: "%.0f%%" % (100 * fl / t / 1e9 / roof) if roof else "-"
        o = rows.get((op, passes, "ours_bf16_f32out"))
        lines.append("| %s | %s | %.1f | %.1f | %.2fx | %s | %s | %s |" % (
            op, passes, f[0] * 1e3, h[0] * 1e3, f[0] / h[0], pct(f[0], f[1], r32), pct(h[0], h[1], r16),
            "%.1f" % (o[0] * 1e3) if o else "-"))
    return lines
