"""float16 / bfloat16 through the emulated CUDA kernels (issue #20, deliverable 3).

On a GPU these ops load and store c10::Half / c10::BFloat16 and compute in float32 (acc_t). Under the
emulator the same kernel text is instantiated with the same storage types: each load converts to float32, the
math is float32, each store rounds to the storage type, exactly as on the GPU. Reference: the CPU op in float32
on the same (already rounded) inputs, then rounded to the storage type.

Tolerances: an output rounded once to the storage type is off by at most half an ulp: 2^-11 relative for
float16 and 2^-8 for bfloat16. Where the kernel also stores an intermediate in the storage type (or a sum of a
few such values), a few ulps: hence rtol = 4 ulps (float16 2e-3, bfloat16 1.6e-2) and atol of the same order
times the output's scale. Integer outputs (indices, argmax) must be equal: inputs are chosen with distinct
values that survive rounding, so no tie is created by it."""
import pytest
import torch

pytestmark = pytest.mark.emu

O = torch.ops.semcorr
DTYPES = [torch.float16, torch.bfloat16]
TOL = {torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def rnd(*shape, dtype, seed=0, scale=1.0):
    """Random values already representable in `dtype` (returned in `dtype`)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).to(dtype)


def distinct(*shape, dtype, seed=0):
    """Distinct values k/256 (k a permutation), exact in float16 and bfloat16 up to 256 (bfloat16 has 8 bits):
    max/top-k winners and ties are the same in every precision."""
    n = 1
    for s in shape:
        n *= s
    assert n <= 256
    g = torch.Generator().manual_seed(seed)
    return (torch.randperm(n, generator=g).float() / 256.0 - 0.5).view(*shape).to(dtype)


def check(got, ref32, dtype, scale=1.0):
    """`got` (storage dtype) against the float32 reference rounded to the storage dtype."""
    assert got.dtype == dtype
    tol = TOL[dtype]
    torch.testing.assert_close(got.float(), ref32.to(dtype).float(), rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_corr4d_and_mutual_matching(emu, dtype):
    src, tgt = rnd(2, 5, 3, 4, dtype=dtype), rnd(2, 5, 4, 3, dtype=dtype, seed=1)
    args = (True, False, 1.0, 1e-6)
    out = emu.corr4d(src, tgt, *args)
    ref = O.corr4d(src.float(), tgt.float(), *args)
    check(out, ref, dtype)
    grad = rnd(*out.shape, dtype=dtype, seed=2)
    gs, gt = emu.corr4d_backward(grad, src, tgt, out, *args)
    rs, rt = O._corr4d_backward(grad.float(), src.float(), tgt.float(), out.float(), *args)
    check(gs, rs, dtype, scale=2.0)
    check(gt, rt, dtype, scale=2.0)
    c = rnd(2, 3, 4, 3, 5, dtype=dtype, seed=3).abs()
    check(emu.mutual_matching(c, 1e-5), O.mutual_matching(c.float(), 1e-5), dtype)
    gc = rnd(*c.shape, dtype=dtype, seed=4)
    check(emu.mutual_matching_backward(gc, c, 1e-5), O._mutual_matching_backward(gc.float(), c.float(), 1e-5), dtype,
          scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv4d(emu, dtype):
    x, w, b = rnd(1, 2, 3, 4, 3, 3, dtype=dtype), rnd(3, 2, 3, 3, 3, 3, dtype=dtype, seed=1, scale=0.1), \
        rnd(3, dtype=dtype, seed=2)
    pad = [1, 1, 1, 1]
    out = emu.conv4d(x, w, b, pad)
    check(out, O.conv4d(x.float(), w.float(), b.float(), pad), dtype, scale=4.0)
    grad = rnd(*out.shape, dtype=dtype, seed=3)
    gx, gw, gb = emu.conv4d_backward(grad, x, w, pad, [True, True, True])
    rx, rw, rb = O._conv4d_backward(grad.float(), x.float(), w.float(), pad, [True, True, True])
    check(gx, rx, dtype, scale=4.0)
    check(gw, rw, dtype, scale=16.0)
    check(gb, rb, dtype, scale=16.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool4d(emu, dtype):
    x = distinct(1, 2, 4, 2, 4, 4, dtype=dtype)
    k = [2, 2, 2, 2]
    values, argmax = emu.max_pool4d(x, k)
    rv, ra = O.max_pool4d(x.float(), k)
    assert torch.equal(argmax, ra)
    assert torch.equal(values.float(), rv)  # a max of representable values is exact
    grad = rnd(*values.shape, dtype=dtype, seed=1)
    gx = emu.max_pool4d_backward(grad, argmax, list(x.shape), k)
    assert gx.dtype == dtype and torch.equal(gx.float(), O._max_pool4d_backward(grad.float(), ra, list(x.shape), k))


@pytest.mark.parametrize("dtype", DTYPES)
def test_corr4d_topk(emu, dtype):
    # distinct correlations: one channel holding distinct values on the target side, a positive source
    src = torch.ones(1, 1, 3, 4, dtype=dtype)
    tgt = distinct(1, 1, 5, 6, dtype=dtype, seed=1)
    v, i = emu.corr4d_topk(src, tgt, 4, False, 1e-6)
    rv, ri = O.corr4d_topk(src.float(), tgt.float(), 4, False, 1e-6)
    assert torch.equal(i, ri)
    check(v, rv, dtype)
    src, tgt = rnd(2, 6, 3, 4, dtype=dtype), rnd(2, 6, 4, 5, dtype=dtype, seed=2)
    v, i = emu.corr4d_topk(src, tgt, 3, True, 1e-6)
    grad = rnd(*v.shape, dtype=dtype, seed=3)
    gs, gt = emu.corr4d_topk_backward(grad, src, tgt, v, i, True, 1e-6)
    # the backward at the emulator's own selection (rounding may reorder near-equal correlations)
    rs, rt = O._corr4d_topk_backward(grad.float(), src.float(), tgt.float(), v.float(), i, True, 1e-6)
    check(gs, rs, dtype, scale=2.0)
    check(gt, rt, dtype, scale=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_conv4d(emu, dtype):
    coords = torch.tensor([[0, i, j, k, l] for i in range(2) for j in range(2) for k in range(2) for l in range(3)])
    in_rows, out_rows, ptr = O.kernel_map4d(coords, [3])
    f, w, b = rnd(24, 3, dtype=dtype), rnd(4, 3, 3, 3, 3, 3, dtype=dtype, seed=1, scale=0.2), rnd(4, dtype=dtype, seed=2)
    out = emu.sparse_conv4d(f, w, b, in_rows, out_rows, ptr)
    check(out, O.sparse_conv4d(f.float(), w.float(), b.float(), in_rows, out_rows, ptr), dtype, scale=4.0)
    grad = rnd(24, 4, dtype=dtype, seed=3)
    got = emu.sparse_conv4d_backward(grad, f, w, in_rows, out_rows, ptr)
    ref = O._sparse_conv4d_backward(grad.float(), f.float(), w.float(), in_rows, out_rows, ptr)
    for g, r, s in zip(got, ref, (4.0, 8.0, 8.0)):
        check(g, r, dtype, scale=s)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_windows4d(emu, dtype):
    corr = rnd(1, 3, 3, 4, 5, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    cand = torch.stack([torch.randint(-1, 5, (1, 3, 3, 2), generator=g), torch.randint(-1, 6, (1, 3, 3, 2), generator=g)],
                       -1)
    out = emu.gather_windows4d(corr, cand, 3)
    assert out.dtype == dtype and torch.equal(out.float(), O.gather_windows4d(corr.float(), cand, 3))  # copies: exact
    grad = rnd(*out.shape, dtype=dtype, seed=2)
    check(emu.gather_windows4d_backward(grad, cand, list(corr.shape), 3),
          O._gather_windows4d_backward(grad.float(), cand, list(corr.shape), 3), dtype, scale=4.0)
    pts = torch.stack([torch.zeros(6, dtype=torch.long)] + [torch.randint(-1, n + 1, (6,), generator=g)
                                                            for n in corr.shape[1:]], 1)
    outp = emu.gather_windows4d_points(corr, pts, 3)
    assert torch.equal(outp.float(), O.gather_windows4d_points(corr.float(), pts, 3))
    gp = rnd(*outp.shape, dtype=dtype, seed=3)
    check(emu.gather_windows4d_points_backward(gp, pts, list(corr.shape), 3),
          O._gather_windows4d_points_backward(gp.float(), pts, list(corr.shape), 3), dtype, scale=4.0)
    weight, bias = rnd(2, 3, 3, 3, 3, dtype=dtype, seed=4, scale=0.2), rnd(2, dtype=dtype, seed=5)
    check(emu.gather_windows4d_linear(corr, pts, weight, bias),
          O.gather_windows4d_linear(corr.float(), pts, weight.float(), bias.float()), dtype, scale=8.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_patchmatch_select(emu, dtype):
    g = torch.Generator().manual_seed(0)
    cand = torch.randint(0, 6, (1, 2, 3, 8, 2), generator=g)
    scores = distinct(1, 2, 3, 8, dtype=dtype, seed=1)
    valid = torch.rand(1, 2, 3, 8, generator=g) < 0.7
    m, s, i = emu.patchmatch_select(cand, scores, valid, 3)
    rm, rs, ri = O.patchmatch_select(cand, scores.float(), valid, 3)
    assert torch.equal(i, ri) and torch.equal(m, rm)
    assert s.dtype == dtype and torch.equal(s.float(), rs)  # selected scores are copies


@pytest.mark.parametrize("dtype", DTYPES)
def test_hough_match_and_vote(emu, dtype):
    g = torch.Generator().manual_seed(0)
    app = torch.rand(1, 9, 11, generator=g).to(dtype)
    sc, tc = torch.rand(1, 9, 2, generator=g) * 40, torch.rand(1, 11, 2, generator=g) * 30
    args = ([40.0, 40.0], [30.0, 30.0], 64, True)
    # votes sum ~ten products in float32 then one rounding at the output
    check(emu.hough_match(app, sc, tc, *args), O.hough_match(app.float(), sc, tc, *args), dtype)
    grad = torch.rand(app.shape, generator=g).to(dtype)
    check(emu.hough_match_backward(grad, app, sc, tc, *args),
          O._hough_match_backward(grad.float(), app.float(), sc, tc, *args), dtype, scale=2.0)
    bins = torch.randint(-1, 20, (1, 9, 11), generator=g)
    k = torch.rand(3, generator=g)
    check(emu.hough_vote(app, bins, [20], k), O.hough_vote(app.float(), bins, [20], k), dtype, scale=2.0)
    check(emu.hough_vote_backward(grad, app, bins, [20], k),
          O._hough_vote_backward(grad.float(), app.float(), bins, [20], k), dtype, scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_soft_argmax(emu, dtype):
    c = rnd(1, 3, 4, 5, 6, dtype=dtype, scale=0.1)
    out = emu.kernel_soft_argmax(c, 50.0, 5.0, True)
    check(out, O.kernel_soft_argmax(c.float(), 50.0, 5.0, True), dtype, scale=2.0)
    grad = rnd(1, 3, 4, 2, dtype=dtype, seed=1)
    check(emu.kernel_soft_argmax_backward(grad, c, 50.0, 5.0, True),
          O._kernel_soft_argmax_backward(grad.float(), c.float(), 50.0, 5.0, True), dtype, scale=4.0)


def test_every_half_op_is_covered():
    """The ops whose CUDA entries accept float16/bfloat16 (allow_half=true in csrc/*/*_launch.h) are the ops above:
    a new one must get a test here."""
    import glob
    import os
    import re

    root = os.path.join(os.path.dirname(__file__), "..", "csrc")
    ops = set()
    for path in glob.glob(os.path.join(root, "*", "*_launch.h")):
        op = os.path.basename(os.path.dirname(path))
        if os.path.basename(path) != op + "_launch.h":  # shared launch code (csrc/hough_common) has no entry
            continue
        if re.search(r"allow_half=\*/true|, true, op\)|, true\)|cuda_kernel=\*/true", open(path).read()):
            ops.add(op)
    assert ops == {"conv4d", "corr4d", "corr4d_topk", "gather_windows4d", "hough_match", "hough_vote",
                   "kernel_soft_argmax", "max_pool4d", "mutual_matching", "patchmatch_select", "sparse_conv4d"}
