"""`out_dtype=torch.float32` of corr4d and conv4d with bfloat16 inputs on the CPU (issue #18, docs/OPS.md#precision).

The output is the float32 op on the inputs upcast: the products of bfloat16 values are exact in float32, the sums and
the epilogue float32, one rounding to float32 at the end. So it must agree with the float64 reference on the same
bfloat16 values to float32 accumulation error (rtol 1e-5 here; a bfloat16-rounded output is off by up to 2^-9
relative and fails). The gradients keep the inputs' dtype and the bfloat16 path's accuracy (normwise 1.5e-2, as
tests/test_bf16.py). None or the input dtype changes nothing; any other out_dtype raises, naming `out_dtype`.
opcheck, compile and the error rows: tests/op_rows_correlation.py, tests/op_rows_consensus.py."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from semcorr_ext import ops, reference

BF16, F32, F64 = torch.bfloat16, torch.float32, torch.float64


def rnd(*shape, seed=0, dtype=BF16):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def normwise(actual, expected):
    return ((actual.double() - expected).abs().max() / expected.abs().max()).item()


def grads_vs_reference(fn, ref, inputs, out_grad):
    """(op's gradients, float64 reference gradients) of <fn(*inputs), out_grad>."""
    xs = [t.detach().requires_grad_() for t in inputs]
    fn(*xs).backward(out_grad)
    xr = [t.detach().double().requires_grad_() for t in inputs]
    ref(*xr).backward(out_grad.double())
    return [x.grad for x in xs], [x.grad for x in xr]


CORR_FLAGS = [dict(), dict(relu=True, power=3.0, eps=0.0), dict(normalize=False)]


@pytest.mark.parametrize("flags", CORR_FLAGS, ids=["cosine", "hpf", "raw"])
def test_corr4d_float32_out_is_the_float32_op_on_bf16_values(flags):
    src, tgt = rnd(2, 256, 5, 6), rnd(2, 256, 4, 7, seed=1)
    out = ops.corr4d(src, tgt, out_dtype=F32, **flags)
    assert out.dtype == F32
    ref = reference.corr4d(src.double(), tgt.double(), **flags)
    scale = ref.abs().max().item()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(out, ops.corr4d(src.float(), tgt.float(), **flags), rtol=1e-6, atol=1e-7 * scale)
    # the bfloat16 output is what out_dtype avoids: it is off by its rounding
    assert normwise(ops.corr4d(src, tgt, **flags), ref) > 10 * normwise(out, ref)


@pytest.mark.parametrize("flags", CORR_FLAGS, ids=["cosine", "hpf", "raw"])
def test_corr4d_float32_out_gradients_are_bf16(flags):
    src, tgt = rnd(2, 64, 4, 5), rnd(2, 64, 3, 6, seed=1)
    g = rnd(2, 4, 5, 3, 6, seed=2, dtype=F32)
    got, want = grads_vs_reference(lambda s, t: ops.corr4d(s, t, out_dtype=F32, **flags),
                                   lambda s, t: reference.corr4d(s, t, **flags), (src, tgt), g)
    for a, b in zip(got, want):
        assert a.dtype == BF16
        assert normwise(a, b) <= 1.5e-2


# NC-Net's layers: 1 -> 16 and 16 -> 16 take the gather plan, 16 -> 1 the scatter plan (csrc/conv4d/conv4d_cpu.cpp)
CONV_LAYERS = [(1, 16), (16, 16), (16, 1)]


def conv_inputs(cin, cout):
    return rnd(2, cin, 5, 4, 5, 6), rnd(cout, cin, 3, 3, 3, 3, seed=1) * 0.2, rnd(cout, seed=2)


@pytest.mark.parametrize("cin,cout", CONV_LAYERS)
def test_conv4d_float32_out_is_the_float32_op_on_bf16_values(cin, cout):
    x, w, b = conv_inputs(cin, cout)
    out = ops.conv4d(x, w, b, out_dtype=F32)
    assert out.dtype == F32
    ref = reference.conv4d(x.double(), w.double(), b.double())
    scale = ref.abs().max().item()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(out, ops.conv4d(x.float(), w.float(), b.float()), rtol=1e-6, atol=1e-6 * scale)
    assert normwise(ops.conv4d(x, w, b), ref) > 10 * normwise(out, ref)


@pytest.mark.parametrize("cin,cout", CONV_LAYERS)
def test_conv4d_float32_out_gradients_are_bf16(cin, cout):
    x, w, b = conv_inputs(cin, cout)
    g = rnd(2, cout, 5, 4, 5, 6, seed=3, dtype=F32)
    got, want = grads_vs_reference(lambda *a: ops.conv4d(*a, out_dtype=F32), reference.conv4d, (x, w, b), g)
    for a, r in zip(got, want):
        assert a.dtype == BF16
        assert normwise(a, r) <= 1e-2


def test_none_or_the_input_dtype_change_nothing():
    src, tgt = rnd(1, 8, 3, 3), rnd(1, 8, 2, 4, seed=1)
    x, w, b = conv_inputs(4, 2)
    for dt in (BF16, F32, F64):
        s, t = src.to(dt), tgt.to(dt)
        assert torch.equal(ops.corr4d(s, t, out_dtype=dt), ops.corr4d(s, t))
        xw = [t.to(dt) for t in (x, w, b)]
        assert torch.equal(ops.conv4d(*xw, out_dtype=dt), ops.conv4d(*xw))
        assert torch.equal(ops.conv4d(*xw, out_dtype=None), ops.conv4d(*xw))


@pytest.mark.parametrize("in_dtype,out_dtype", [(BF16, F64), (BF16, torch.float16), (F32, BF16), (F64, F32),
                                                (F32, torch.int32)])
def test_any_other_out_dtype_raises_naming_it(in_dtype, out_dtype):
    src = rnd(1, 4, 2, 2, dtype=in_dtype)
    x, w, _ = (t.to(in_dtype) for t in conv_inputs(2, 2))
    with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
        ops.corr4d(src, src, out_dtype=out_dtype)
    with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
        ops.conv4d(x, w, out_dtype=out_dtype)
    with FakeTensorMode() as mode:  # the fake kernels check it too (torch.compile traces with them)
        fs, fx, fw = mode.from_tensor(src), mode.from_tensor(x), mode.from_tensor(w)
        with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
            ops.corr4d(fs, fs, out_dtype=out_dtype)
        with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
            ops.conv4d(fx, fw, out_dtype=out_dtype)


def test_fake_tensors_have_the_float32_dtype():
    src = rnd(2, 4, 3, 3)
    x, w, b = conv_inputs(2, 3)
    with FakeTensorMode() as mode:
        fs, fx, fw, fb = (mode.from_tensor(t) for t in (src, x, w, b))
        assert ops.corr4d(fs, fs, out_dtype=F32).dtype == F32
        assert ops.conv4d(fx, fw, fb, out_dtype=F32).dtype == F32
        assert ops.corr4d(fs, fs).dtype == BF16 and ops.conv4d(fx, fw, fb).dtype == BF16


def test_backward_ops_take_float32_grad_and_out_of_bf16_inputs():
    # what autograd passes after a float32 out_dtype forward; a float64 grad is refused, naming `grad`
    src, tgt = rnd(1, 8, 3, 3), rnd(1, 8, 2, 4, seed=1)
    out = ops.corr4d(src, tgt, out_dtype=F32)
    g = rnd(*out.shape, seed=2, dtype=F32)
    args = (True, False, 1.0, 1e-6)
    gs, gt = torch.ops.semcorr._corr4d_backward(g, src, tgt, out, *args)
    assert gs.dtype == BF16 and gt.dtype == BF16
    with pytest.raises(RuntimeError, match="`grad` must have the dtype of `src`"):
        torch.ops.semcorr._corr4d_backward(g.double(), src, tgt, out, *args)
    x, w, _ = conv_inputs(2, 3)
    gx, gw, gb = torch.ops.semcorr._conv4d_backward(rnd(2, 3, 5, 4, 5, 6, dtype=F32), x, w, [1] * 4, [True] * 3)
    assert gx.dtype == gw.dtype == gb.dtype == BF16
    with pytest.raises(RuntimeError, match="`grad` must have the dtype of `x`"):
        torch.ops.semcorr._conv4d_backward(rnd(2, 3, 5, 4, 5, 6, dtype=F64), x, w, [1] * 4, [True] * 3)
