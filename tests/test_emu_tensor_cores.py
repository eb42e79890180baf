"""Tensor-core (mma.sync) kernels of corr4d, corr4d_topk, conv4d and sparse_conv4d under the host emulator, tensor
cores switched on (semcorr_ext._emu.set_tensor_cores(True), as on a GPU of compute capability >= 8.0).

Paths (csrc/common/tensor_cores.h): float16 -> m16n8k16 .f16, bfloat16 -> m16n8k16 .bf16, float32 -> m16n8k8 .tf32
when PyTorch's TF32 switch allows it (matmul switch for the correlations, cuDNN switch for conv4d; inputs rounded
to tf32 by cvt.rna: nearest, ties away), else the exact SIMT kernel; float64 always SIMT. conv4d's input gradient
and sparse_conv4d's feature gradient run through the same GEMM kernels (tensor cores); both weight gradients have
their own tensor-core kernels.

Reference: float64 on the operand values the tensor cores see (the 16-bit inputs; float32 inputs rounded to tf32),
with the inverse norms from the unrounded inputs (the kernels compute them from the inputs, as the SIMT path).
Tolerance, from float32 accumulation: the dot product of C terms is off by at most C * 2^-24 * sum_c |a_c b_c|, the
float32 inverse norms by (C/2 + 2) * 2^-24 relative each, so S = raw * inv_s * inv_t by errS = 2 (C + 4) 2^-24
* sum|a b| * inv_s * inv_t; relu is 1-Lipschitz and x**p monotone, so the output is within
[(|S| - errS)^p, (|S| + errS)^p], plus its rounding to the storage type (half an ulp: 2^-11 float16, 2^-8 bfloat16,
2^-24 float32; doubled; one subnormal ulp absolute) plus 4 float32 ulps for pow's own error."""
import pytest
import torch
from test_emu_sparse import sparse_coords

from semcorr_ext import ops

pytestmark = pytest.mark.emu

U32 = 2.0**-24
U_OUT = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24}
DTYPES = [torch.float16, torch.bfloat16, torch.float32]
# The storage types' ulp among subnormals: the absolute rounding error where relative bounds stop holding.
U_SUB = {t: torch.finfo(t).tiny * torch.finfo(t).eps for t in DTYPES}


@pytest.fixture
def tc(emu):
    """Tensor cores on, TF32 allowed for matmuls and convolutions; restores the settings afterwards."""
    old_tc, old_prec = emu.get_tensor_cores(), torch.get_float32_matmul_precision()
    old_cudnn = torch.backends.cudnn.allow_tf32
    emu.set_tensor_cores(True)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    emu.reset_mma_count()
    yield emu
    emu.set_tensor_cores(old_tc)
    torch.set_float32_matmul_precision(old_prec)
    torch.backends.cudnn.allow_tf32 = old_cudnn


def tf32(x):
    """float32 -> tf32 like cvt.rna.tf32.f32 (round to nearest, ties away from zero), as float32."""
    bits = x.float().view(torch.int32)
    finite = torch.isfinite(x.float())
    return torch.where(finite, (bits + 0x1000) & ~0x1FFF, bits).view(torch.float32)


def feats(*shape, dtype, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def reference(src, tgt, normalize, eps):
    """(S, errS) in float64, (B, Ns, Nt): see the module docstring."""
    B, C = src.shape[:2]
    op = (lambda x: tf32(x).double()) if src.dtype == torch.float32 else (lambda x: x.double())
    s, t = op(src).reshape(B, C, -1), op(tgt).reshape(B, C, -1)
    raw = torch.einsum("bcs,bct->bst", s, t)
    mag = torch.einsum("bcs,bct->bst", s.abs(), t.abs())
    if normalize:
        inv_s = 1 / torch.sqrt((src.double().reshape(B, C, -1) ** 2).sum(1) + eps)
        inv_t = 1 / torch.sqrt((tgt.double().reshape(B, C, -1) ** 2).sum(1) + eps)
    else:
        inv_s = torch.ones(B, s.shape[2], dtype=torch.float64)
        inv_t = torch.ones(B, t.shape[2], dtype=torch.float64)
    scale = inv_s[:, :, None] * inv_t[:, None, :]
    return raw * scale, 2 * (C + 4) * U32 * mag * scale


def check_corr(out, S, errS, relu, power, dtype):
    out = out.double().reshape(S.shape)
    lo = S - errS
    hi = S + errS
    if relu:
        lo, hi = lo.clamp_min(0), hi.clamp_min(0)
    lo = torch.where(lo < 0, lo, lo**power) if power != 1 else lo
    hi = hi**power if power != 1 else hi
    slack = (2 * U_OUT[dtype] + 4 * U32) * torch.maximum(lo.abs(), hi.abs()) + U_SUB[dtype]
    bad = (out < lo - slack) | (out > hi + slack)
    assert not bad.any(), "%d entries outside the bound, first at %s: got %r, bound [%r, %r]" % (
        bad.sum(), bad.nonzero()[0].tolist(), out[bad][0].item(), lo[bad][0].item(), hi[bad][0].item())


FLAGS = [dict(normalize=True, relu=False, power=1.0), dict(normalize=False, relu=False, power=1.0),
         dict(normalize=True, relu=True, power=2.0), dict(normalize=True, relu=True, power=1.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flags", FLAGS)
def test_corr4d_tc_kernel_forward(tc, dtype, flags):
    # Ns = 70, Nt = 66 cross the 64 x 64 tile edge; C = 37 crosses the 32-channel stage and is no multiple of k.
    src, tgt = feats(2, 37, 7, 10, dtype=dtype), feats(2, 37, 6, 11, dtype=dtype, seed=1)
    out = tc.corr4d(src, tgt, flags["normalize"], flags["relu"], flags["power"], 1e-6)
    assert out.dtype == dtype and out.shape == (2, 7, 10, 6, 11)
    assert tc.mma_count() > 0
    check_corr(out, *reference(src, tgt, flags["normalize"], 1e-6), flags["relu"], flags["power"], dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_corr4d_tc_kernel_schedules_and_single_cell(tc, emu_schedule, dtype):
    src, tgt = feats(1, 3, 1, 1, dtype=dtype, seed=2), feats(1, 3, 1, 1, dtype=dtype, seed=3)
    check_corr(tc.corr4d(src, tgt, True, False, 1.0, 1e-6), *reference(src, tgt, True, 1e-6), False, 1.0, dtype)
    src, tgt = feats(1, 20, 9, 8, dtype=dtype, seed=4), feats(1, 20, 5, 13, dtype=dtype, seed=5)
    check_corr(tc.corr4d(src, tgt, True, True, 1.0, 1e-6), *reference(src, tgt, True, 1e-6), True, 1.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_corr4d_tc_kernel_empty(tc, dtype):
    out = tc.corr4d(feats(2, 5, 0, 3, dtype=dtype), feats(2, 5, 4, 3, dtype=dtype), True, False, 1.0, 1e-6)
    assert out.shape == (2, 0, 3, 4, 3)
    # no channels: every dot product is 0 (the tile loop never runs; the epilogue still does)
    out = tc.corr4d(feats(1, 0, 2, 3, dtype=dtype), feats(1, 0, 4, 1, dtype=dtype), False, False, 1.0, 1e-6)
    assert out.shape == (1, 2, 3, 4, 1) and (out == 0).all()


def test_path_selection(emu, tc):
    # Inputs with low mantissa bits set: TF32 rounding must show, the exact path must not.
    src, tgt = feats(1, 24, 5, 6, dtype=torch.float32, seed=6), feats(1, 24, 6, 5, dtype=torch.float32, seed=7)
    args = (True, False, 1.0, 1e-6)
    emu.set_tensor_cores(False)
    exact = emu.corr4d(src, tgt, *args)
    assert emu.mma_count() == 0
    emu.set_tensor_cores(True)
    on = emu.corr4d(src, tgt, *args)
    assert emu.mma_count() > 0 and not torch.equal(on, exact)
    check_corr(on, *reference(src, tgt, True, 1e-6), False, 1.0, torch.float32)
    for disallow in (lambda: setattr(torch.backends.cuda.matmul, "allow_tf32", False),
                     lambda: torch.set_float32_matmul_precision("highest")):
        torch.set_float32_matmul_precision("high")
        disallow()
        emu.reset_mma_count()
        assert torch.equal(emu.corr4d(src, tgt, *args), exact) and emu.mma_count() == 0
    torch.set_float32_matmul_precision("high")  # the other spelling of allow_tf32 = True
    emu.reset_mma_count()
    assert torch.equal(emu.corr4d(src, tgt, *args), on) and emu.mma_count() > 0
    # the conv switch does not govern matmul-like ops
    torch.set_float32_matmul_precision("highest")
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        assert torch.equal(emu.corr4d(src, tgt, *args), exact)
    finally:
        torch.backends.cudnn.allow_tf32 = old
    # float64 never takes tensor cores; 16-bit inputs always do (with tensor cores available)
    emu.reset_mma_count()
    emu.corr4d(src.double(), tgt.double(), *args)
    assert emu.mma_count() == 0
    emu.corr4d(src.half(), tgt.half(), *args)
    assert emu.mma_count() > 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_corr4d_topk_tc_kernel_forward(tc, dtype, normalize):
    # Ns = 35 crosses the 32-row block; Nt = 66 the 64-column step; C = 37 the 32-channel stage.
    src, tgt = feats(2, 37, 5, 7, dtype=dtype), feats(2, 37, 6, 11, dtype=dtype, seed=1)
    k = 5
    vals, idx = tc.corr4d_topk(src, tgt, k, normalize, 1e-6)
    assert tc.mma_count() > 0
    S, errS = reference(src, tgt, normalize, 1e-6)
    vals, idx = vals.double().reshape(2, 35, k), idx.reshape(2, 35, k)
    err = errS.amax(dim=2, keepdim=True) + 2 * U_OUT[dtype] * S.abs().amax(dim=2, keepdim=True) + U_SUB[dtype]
    # the i-th largest of a perturbed row moves by at most the perturbation
    ref_vals = S.topk(k, dim=2).values
    assert ((vals - ref_vals).abs() <= err).all()
    # each returned index names an entry whose true value matches the returned one, and indices are distinct
    assert ((S.gather(2, idx) - vals).abs() <= 2 * err).all()
    assert (idx.sort(dim=2).values.diff(dim=2) > 0).all()
    assert (vals.diff(dim=2) <= 0).all()


def realistic(C, n, dtype, seed):
    """ReLU features (as from a CNN backbone) for an n x n source grid, and a target grid showing the same
    positions in another order plus independent ReLU noise: each source cell has a true match, as in an image pair."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(1, C, n, n, generator=g).relu()
    perm = torch.randperm(n * n, generator=g)
    tgt = src.reshape(1, C, -1)[:, :, perm].reshape(1, C, n, n) + 0.5 * torch.randn(1, C, n, n, generator=g).relu()
    return src.to(dtype), tgt.to(dtype)


# The contract's bounds (docs/OPS.md#precision); measured (pytest -s prints them): float16 2.6e-4, bfloat16 2.0e-3,
# TF32 1.6e-4, argmax agreement 100% each.
ACCURACY = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 2e-3}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_corr4d_tc_kernel_accuracy_realistic(tc, dtype):
    # C = 256, 25 x 25 grids: 25-50 s per dtype under the emulator (TF32 has twice the mma instructions)
    C, n = 256, 25
    src, tgt = realistic(C, n, dtype, seed=11)
    out = tc.corr4d(src, tgt, True, False, 1.0, 1e-6).double().reshape(n * n, n * n)
    s64, t64 = src.double().reshape(C, -1), tgt.double().reshape(C, -1)
    ref = (s64 / s64.norm(dim=0)).T @ (t64 / t64.norm(dim=0))
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    agree = (out.argmax(1) == ref.argmax(1)).double().mean().item()
    print("corr4d %s C=%d %dx%d: max rel err %.3g, argmax agreement %.4f" % (dtype, C, n, n, rel, agree))
    assert rel <= ACCURACY[dtype]
    assert agree >= 0.99


def operand(x):
    """The values the tensor cores multiply, in float64: tf32-rounded float32, or the 16-bit values."""
    return tf32(x).double() if x.dtype == torch.float32 else x.double()


def check_linear(out, ref, mag, K, dtype):
    """out vs ref of a K-term float32-accumulated sum with sum of |terms| `mag`, rounded to `dtype`."""
    err = (K + 2) * U32 * mag
    bound = err + 2 * U_OUT[dtype] * (ref.abs() + err) + U_SUB[dtype]
    bad = (out.double() - ref).abs() > bound
    assert not bad.any(), "%d entries outside the bound, worst excess %r" % (
        bad.sum(), ((out.double() - ref).abs() - bound).max().item())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cout,bias", [(5, True), (35, False)])
def test_conv4d_tc_kernels_forward_input_and_weight_grad(tc, dtype, cout, bias):
    # K = 3 * 81 = 243 (not a multiple of the 32 slab or of k), Npos = 360 crosses the 128-position tile; Cout = 5
    # uses 16-row tiles, 35 two 32-row tiles.
    x = feats(2, 3, 5, 4, 6, 3, dtype=dtype)
    w = (feats(cout, 3, 3, 3, 3, 3, dtype=torch.float32, seed=1) * 0.2).to(dtype)
    b = feats(cout, dtype=dtype, seed=2) if bias else None
    pad = [1, 1, 1, 1]
    out = tc.conv4d(x, w, b, pad)
    assert out.dtype == dtype and tc.mma_count() > 0
    b64 = b.double() if bias else None
    ref = torch.ops.semcorr.conv4d(operand(x), operand(w), b64, pad)
    mag = torch.ops.semcorr.conv4d(operand(x).abs(), operand(w).abs(), b64.abs() if bias else None, pad)
    check_linear(out, ref, mag, 3 * 81, dtype)
    # backward: the input gradient is the same implicit GEMM, the weight gradient its own tensor-core kernel (the
    # positions are its reduction: K = B * Npos terms, plus the host's sum of the per-split partial sums)
    grad = feats(*out.shape, dtype=dtype, seed=3)
    gx, gw, _ = tc.conv4d_backward(grad, x, w, pad, [True, True, False])
    args = (operand(grad), operand(x), operand(w), pad, [True, True, False])
    ref = torch.ops.semcorr._conv4d_backward(*args)
    mag = torch.ops.semcorr._conv4d_backward(*[a.abs() for a in args[:3]], *args[3:])
    check_linear(gx, ref[0], mag[0], cout * 81, dtype)
    check_linear(gw, ref[1], mag[1], 2 * 2 * 360, dtype)
    tc.set_tensor_cores(False)
    gx_simt, gw_simt, _ = tc.conv4d_backward(grad, x, w, pad, [True, True, False])
    if dtype == torch.float32:  # TF32 rounding shows on random mantissas
        assert not torch.equal(gx, gx_simt) and not torch.equal(gw, gw_simt)


def test_conv4d_path_selection(emu, tc):
    x, w = feats(1, 2, 4, 3, 5, 3, dtype=torch.float32), feats(4, 2, 3, 3, 3, 3, dtype=torch.float32, seed=1)
    pad = [1, 1, 1, 1]
    emu.set_tensor_cores(False)
    exact = emu.conv4d(x, w, None, pad)
    emu.set_tensor_cores(True)
    assert not torch.equal(emu.conv4d(x, w, None, pad), exact) and emu.mma_count() > 0
    # convolutions follow the cuDNN switch, not the matmul one
    torch.set_float32_matmul_precision("highest")
    emu.reset_mma_count()
    assert not torch.equal(emu.conv4d(x, w, None, pad), exact) and emu.mma_count() > 0
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = True
    emu.reset_mma_count()
    assert torch.equal(emu.conv4d(x, w, None, pad), exact) and emu.mma_count() == 0
    assert emu.conv4d(x.bfloat16(), w.bfloat16(), None, pad).dtype == torch.bfloat16 and emu.mma_count() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv4d_tc_kernels_empty_and_no_channels(tc, dtype):
    out = tc.conv4d(feats(0, 2, 3, 3, 3, 3, dtype=dtype), feats(4, 2, 3, 3, 3, 3, dtype=dtype), None, [1, 1, 1, 1])
    assert out.shape == (0, 4, 3, 3, 3, 3)
    b = feats(4, dtype=dtype, seed=4)
    out = tc.conv4d(feats(1, 0, 3, 3, 3, 3, dtype=dtype), feats(4, 0, 3, 3, 3, 3, dtype=dtype), b, [1, 1, 1, 1])
    assert torch.equal(out, b.view(1, 4, 1, 1, 1, 1).expand(1, 4, 3, 3, 3, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ks,cin,cout,bias", [((3, 1, 1, 3), 37, 33, True), ((1, 3, 3, 1), 2, 3, False)])
def test_sparse_conv4d_tc_kernels_forward_feature_and_weight_grad(tc, dtype, ks, cin, cout, bias):
    # 80 points: > 32 pairs per offset; Cin = 37 crosses the 32 slab and is no multiple of k; Cout = 33 the 32 tile
    coords = sparse_coords(2, (5, 3, 3, 5), 40, seed=2)
    km = ops.kernel_map4d(coords, ks)
    taps = ks[0] * ks[1] * ks[2] * ks[3]
    f = feats(80, cin, dtype=dtype)
    w = (feats(cout, cin, *ks, dtype=torch.float32, seed=1) * 0.3).to(dtype)
    b = feats(cout, dtype=dtype, seed=2) if bias else None
    maps = (km.in_rows, km.out_rows, km.offsets_ptr)
    out = tc.sparse_conv4d(f, w, b, *maps)
    assert out.dtype == dtype and tc.mma_count() > 0
    b64 = b.double() if bias else None
    ref = ops.sparse_conv4d(operand(f), None, operand(w), b64, kernel_map=km)
    mag = ops.sparse_conv4d(operand(f).abs(), None, operand(w).abs(), b64.abs() if bias else None, kernel_map=km)
    check_linear(out, ref, mag, cin * taps, dtype)
    # feature gradient: the same gather-GEMM-scatter; weight gradient: its own kernel, <= 80 pairs per offset
    grad = feats(80, cout, dtype=dtype, seed=3)
    gf, gw, gb = tc.sparse_conv4d_backward(grad, f, w, *maps)
    args = (operand(grad), operand(f), operand(w))
    ref = torch.ops.semcorr._sparse_conv4d_backward(*args, *maps)
    mag = torch.ops.semcorr._sparse_conv4d_backward(*[a.abs() for a in args], *maps)
    check_linear(gf, ref[0], mag[0], cout * taps, dtype)
    check_linear(gw, ref[1], mag[1], 80, dtype)
    tc.set_tensor_cores(False)
    gf_simt, gw_simt, gb_simt = tc.sparse_conv4d_backward(grad, f, w, *maps)
    assert torch.equal(gb, gb_simt)  # a plain sum, no GEMM
    if dtype == torch.float32:  # TF32 rounding shows on random mantissas
        assert not torch.equal(gf, gf_simt) and not torch.equal(gw, gw_simt)
