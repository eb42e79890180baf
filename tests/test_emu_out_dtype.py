"""The CUDA entries of corr4d and conv4d with `out_dtype=torch.float32` and float16/bfloat16 inputs, under the host
emulator (issue #18, docs/OPS.md#precision): the inputs are upcast and the float32 path runs, on the TF32 tensor-core
kernels whatever PyTorch's TF32 switches say (common/tensor_cores.h, Tf32Switch::exact_inputs), because float16 and
bfloat16 values are exact in TF32. So with tensor cores on and TF32 disallowed the mma kernels must run (mma_count >
0) and still agree with the float64 op on the same 16-bit values to float32 accumulation error (rtol 1e-5; a TF32
rounding of an operand would be off by up to 2^-11 relative). The backward entries take the float32 grad and out and
compute as from grad and out in the inputs' dtype."""
import pytest
import torch

from semcorr_ext import ops, reference

pytestmark = pytest.mark.emu

F32 = torch.float32
REDUCED = [torch.bfloat16, torch.float16]


def rnd(*shape, dtype, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


@pytest.fixture(params=["simt", "tensor-cores"])
def paths(request, emu):
    """The SIMT float32 kernels, or tensor cores on with every TF32 switch off; restores the settings."""
    old = (emu.get_tensor_cores(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    emu.set_tensor_cores(request.param == "tensor-cores")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    emu.reset_mma_count()
    yield request.param
    emu.set_tensor_cores(old[0])
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old[1], old[2]


def check_path(emu, path):
    assert (emu.mma_count() > 0) == (path == "tensor-cores")


@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize("flags", [dict(), dict(relu=True, power=3.0)], ids=["cosine", "relu-power3"])
def test_corr4d_float32_out(emu, paths, dtype, flags):
    # Ns = 70, Nt = 66 cross the 64 tiles; C = 40 crosses the 16/32-deep chunks
    src, tgt = rnd(2, 40, 7, 10, dtype=dtype), rnd(2, 40, 6, 11, dtype=dtype, seed=1)
    args = (flags.get("normalize", True), flags.get("relu", False), flags.get("power", 1.0), 1e-6)
    out = emu.corr4d(src, tgt, *args, out_dtype=F32)
    check_path(emu, paths)
    assert out.dtype == F32
    ref = reference.corr4d(src.double(), tgt.double(), **flags)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, ops.corr4d(src.float(), tgt.float(), **flags), rtol=1e-5, atol=1e-6)
    # backward: the float32 grad and out are taken in the inputs' dtype
    grad = rnd(*out.shape, dtype=F32, seed=2)
    got = emu.corr4d_backward(grad, src, tgt, out, *args)
    want = emu.corr4d_backward(grad.to(dtype), src, tgt, out.to(dtype), *args)
    for a, w in zip(got, want):
        assert a.dtype == dtype and torch.equal(a, w)


@pytest.mark.parametrize("dtype", REDUCED)
@pytest.mark.parametrize("cin,cout", [(1, 16), (16, 1), (3, 17)])
def test_conv4d_float32_out(emu, paths, dtype, cin, cout):
    x, w, b = rnd(1, cin, 3, 4, 3, 5, dtype=dtype), rnd(cout, cin, 3, 3, 3, 3, dtype=dtype, seed=1), rnd(
        cout, dtype=dtype, seed=2)
    out = emu.conv4d(x, w, b, [1, 1, 1, 1], out_dtype=F32)
    check_path(emu, paths)
    assert out.dtype == F32
    ref = reference.conv4d(x.double(), w.double(), b.double())
    scale = ref.abs().max().item()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(out, ops.conv4d(x.float(), w.float(), b.float()), rtol=1e-5, atol=1e-6 * scale)
    grad = rnd(*out.shape, dtype=F32, seed=3)
    got = emu.conv4d_backward(grad, x, w, [1, 1, 1, 1], [True, True, True])
    want = emu.conv4d_backward(grad.to(dtype), x, w, [1, 1, 1, 1], [True, True, True])
    for a, r in zip(got, want):
        assert a.dtype == dtype and torch.equal(a, r)


def test_bad_out_dtype_names_it(emu):
    src = rnd(1, 4, 2, 2, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
        emu.corr4d(src, src, True, False, 1.0, 1e-6, out_dtype=torch.float64)
    x, w = rnd(1, 2, 3, 3, 3, 3, dtype=F32), rnd(2, 2, 3, 3, 3, 3, dtype=F32)
    with pytest.raises(RuntimeError, match="`out_dtype` must be None, the input dtype"):
        emu.conv4d(x, w, None, [1, 1, 1, 1], out_dtype=torch.bfloat16)
