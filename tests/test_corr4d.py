"""corr4d: CPU op vs float64 reference and the published pipelines; gradients, opcheck, compile, errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines
from semcorr_ext import ops, reference
from conftest import assert_close

FLAGS = [dict(), dict(normalize=False), dict(relu=True), dict(relu=True, power=3.0), dict(relu=True, power=0.5),
         dict(normalize=False, relu=True, power=2.0), dict(eps=0.0)]


def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("shape", [((2, 8, 5, 7), (2, 8, 6, 3)), ((1, 1, 1, 1), (1, 1, 1, 1)), ((3, 33, 4, 1), (3, 33, 1, 9))])
def test_matches_reference(dtype, flags, shape):
    src, tgt = rand(*shape[0], dtype=dtype), rand(*shape[1], dtype=dtype)
    out = ops.corr4d(src, tgt, **flags)
    assert out.shape == (shape[0][0], *shape[0][2:], *shape[1][2:]) and out.dtype == dtype
    assert_close(out, reference.corr4d(src.double(), tgt.double(), **flags))


def test_values_by_hand():
    # two 2-D feature vectors: cos(0)=1, cos(90)=0, cos(180)=-1
    src = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 1, 2)  # positions: e1, 2*e2
    tgt = torch.tensor([[3.0, 0.0], [-1.0, 0.0]]).T.reshape(1, 2, 1, 2)  # positions: 3*e1, -e1
    out = ops.corr4d(src, tgt, eps=0.0).reshape(2, 2)
    assert torch.equal(out, torch.tensor([[1.0, -1.0], [0.0, 0.0]]))
    out = ops.corr4d(src, tgt, normalize=False).reshape(2, 2)
    assert torch.equal(out, torch.tensor([[3.0, -1.0], [0.0, 0.0]]))
    out = ops.corr4d(src, tgt, eps=0.0, relu=True, power=3.0).reshape(2, 2)
    assert torch.equal(out, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_matches_ncnet_pipeline():
    src, tgt = rand(2, 16, 6, 5), rand(2, 16, 4, 7)
    expected = baselines.ncnet_feature_correlation(baselines.ncnet_feature_l2norm(src), baselines.ncnet_feature_l2norm(tgt))
    assert_close(ops.corr4d(src, tgt), expected.squeeze(1))


def test_matches_hpf_appearance_similarity():
    src, tgt = rand(1, 32, 9, 1), rand(1, 32, 11, 1)  # HPF works on flattened hyperpixels (N, C)
    expected = baselines.hpf_appearance_similarity(src[0, :, :, 0].T, tgt[0, :, :, 0].T, exp1=3)
    out = ops.corr4d(src, tgt, relu=True, power=3.0, eps=0.0).reshape(9, 11)
    assert_close(out, expected)


def test_matches_sfnet_matching_layer():
    src, tgt = rand(2, 16, 5, 6), rand(2, 16, 4, 3)
    expected = baselines.sfnet_matching_layer(src, tgt)  # (B, Ht*Wt, Hs, Ws), target-major
    out = ops.corr4d(src, tgt, relu=True).permute(0, 3, 4, 1, 2).reshape(2, 12, 5, 6)
    assert_close(out, expected)


def test_non_contiguous():
    src = rand(2, 5, 8, 6).transpose(2, 3)  # (2, 5, 6, 8) non-contiguous
    tgt = rand(2, 7, 5, 4)[:, ::1, :, ::2].permute(0, 1, 2, 3)[:, :5]  # sliced channels and stride-2 width
    assert not src.is_contiguous() and not tgt.is_contiguous()
    assert_close(ops.corr4d(src, tgt, relu=True, power=2.0), reference.corr4d(src, tgt, relu=True, power=2.0))


@pytest.mark.parametrize("s_shape,t_shape", [((0, 4, 3, 3), (0, 4, 2, 2)), ((2, 4, 0, 3), (2, 4, 2, 2)),
                                             ((2, 4, 3, 3), (2, 4, 2, 0)), ((2, 0, 3, 3), (2, 0, 2, 2))])
def test_empty(s_shape, t_shape):
    src, tgt = rand(*s_shape).requires_grad_(), rand(*t_shape).requires_grad_()
    out = ops.corr4d(src, tgt)
    assert out.shape == (s_shape[0], *s_shape[2:], *t_shape[2:])
    assert torch.equal(out, reference.corr4d(src.detach(), tgt.detach()))  # zeros when C == 0
    out.sum().backward()
    assert src.grad.shape == src.shape and tgt.grad.shape == tgt.shape


@pytest.mark.parametrize("flags", FLAGS)
def test_gradcheck(flags):
    src = rand(2, 5, 3, 2, dtype=torch.float64).requires_grad_()
    tgt = rand(2, 5, 2, 3, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ops.corr4d(a, b, **flags), (src, tgt))


def test_gradient_matches_reference_autograd():
    src = rand(2, 6, 4, 3, dtype=torch.float64).requires_grad_()
    tgt = rand(2, 6, 3, 5, dtype=torch.float64).requires_grad_()
    w = torch.randn(2, 4, 3, 3, 5, dtype=torch.float64)
    g1 = torch.autograd.grad((ops.corr4d(src, tgt, relu=True, power=3.0) * w).sum(), (src, tgt))
    g2 = torch.autograd.grad((reference.corr4d(src, tgt, relu=True, power=3.0) * w).sum(), (src, tgt))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_double_backward_raises_clearly():
    src = rand(1, 3, 2, 2, dtype=torch.float64).requires_grad_()
    tgt = rand(1, 3, 2, 2, dtype=torch.float64).requires_grad_()
    (gs,) = torch.autograd.grad(ops.corr4d(src, tgt).pow(2).sum(), (src,), create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gs.sum().backward()


@pytest.mark.parametrize("flags", [dict(), dict(relu=True, power=3.0)])
def test_opcheck(flags):
    src, tgt = rand(2, 4, 3, 3).requires_grad_(), rand(2, 4, 2, 3).requires_grad_()
    args = (src, tgt, flags.get("normalize", True), flags.get("relu", False), flags.get("power", 1.0), 1e-6)
    torch.library.opcheck(torch.ops.semcorr.corr4d.default, args)


def test_torch_compile_fullgraph():
    def f(a, b):
        return ops.corr4d(a, b, relu=True, power=2.0).sum(dim=(3, 4))

    src, tgt = rand(2, 4, 3, 3), rand(2, 4, 5, 2)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert_close(compiled(src, tgt), f(src, tgt))


@pytest.mark.parametrize("src,tgt,kwargs,match", [
    (rand(2, 4, 3), rand(2, 4, 3, 3), {}, r"`src` must be a 4-D tensor \(B, C, Hs, Ws\), got shape \[2, 4, 3\]"),
    (rand(2, 4, 3, 3), rand(2, 4, 3, 3, 1), {}, r"`tgt` must be a 4-D tensor"),
    (rand(2, 4, 3, 3), rand(2, 5, 3, 3), {}, r"same number of channels.*\[2, 4, 3, 3\] and \[2, 5, 3, 3\]"),
    (rand(2, 4, 3, 3), rand(3, 4, 3, 3), {}, r"same batch size"),
    (rand(2, 4, 3, 3), rand(2, 4, 3, 3).double(), {}, r"`src` and `tgt` must have the same dtype"),
    (torch.ones(2, 4, 3, 3, dtype=torch.int32), torch.ones(2, 4, 3, 3, dtype=torch.int32), {}, r"`src` must be a floating"),
    (rand(2, 4, 3, 3), rand(2, 4, 3, 3), dict(power=2.0), r"`power` != 1 requires `relu=True`"),
    (rand(2, 4, 3, 3), rand(2, 4, 3, 3), dict(eps=-1.0), r"`eps` must be >= 0"),
])
def test_bad_input(src, tgt, kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        ops.corr4d(src, tgt, **kwargs)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 2), C=st.integers(1, 9), hs=st.integers(1, 5), ws=st.integers(1, 5), ht=st.integers(1, 5),
       wt=st.integers(1, 5), transpose=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, C, hs, ws, ht, wt, transpose, relu, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(B, C, hs, ws, generator=g)
    tgt = torch.randn(B, C, wt, ht, generator=g).transpose(2, 3) if transpose else torch.randn(B, C, ht, wt, generator=g)
    assert_close(ops.corr4d(src, tgt, relu=relu), reference.corr4d(src, tgt, relu=relu))
