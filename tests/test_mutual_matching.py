"""mutual_matching: CPU op vs float64 reference and NC-Net's MutualMatching; gradients, opcheck, compile, errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines
from semcorr_ext import ops, reference
from conftest import assert_close


def volume(*shape, dtype=torch.float32, seed=0):
    # non-negative, like the ReLU'd / softmaxed volumes NC-Net filters; continuous so maxima are unique
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 2), (1, 1, 1, 1, 1), (2, 1, 5, 1, 3, 3), (1, 7, 1, 1, 6)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_matches_reference(dtype, shape, eps):
    c = volume(*shape, dtype=dtype)
    assert_close(ops.mutual_matching(c, eps=eps), reference.mutual_matching(c.double(), eps=eps))


def test_matches_ncnet():
    c = volume(2, 1, 4, 3, 5, 4)
    assert_close(ops.mutual_matching(c), baselines.ncnet_mutual_matching(c), rtol=1e-6, atol=0)


def test_values_by_hand():
    # 2 sources x 2 targets: [[4, 1], [2, 2]]; max over targets per source (4, 2), over sources per target (4, 2)
    c = torch.tensor([[4.0, 1.0], [2.0, 2.0]]).reshape(1, 2, 1, 2, 1)
    out = ops.mutual_matching(c, eps=0.0).reshape(2, 2)
    expected = torch.tensor([[4 * 1 * 1, 1 * (1 / 4) * (1 / 2)], [2 * (2 / 2) * (2 / 4), 2 * 1 * 1]])
    assert torch.equal(out, expected)


def test_non_contiguous():
    c = volume(2, 5, 3, 4, 3).permute(0, 3, 4, 1, 2)  # a transposed (source <-> target) volume
    assert not c.is_contiguous()
    assert_close(ops.mutual_matching(c), reference.mutual_matching(c))


@pytest.mark.parametrize("shape", [(0, 2, 2, 2, 2), (2, 0, 3, 3, 3), (2, 3, 3, 0, 1)])
def test_empty(shape):
    c = torch.rand(*shape, requires_grad=True)
    out = ops.mutual_matching(c)
    assert out.shape == c.shape
    out.sum().backward()
    assert c.grad.shape == c.shape


@pytest.mark.parametrize("shape", [(2, 2, 3, 3, 2), (1, 1, 3, 2, 2, 2)])
def test_gradcheck(shape):
    c = volume(*shape, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: ops.mutual_matching(x), (c,))


def test_gradient_matches_torch_max_routing():
    # the gradient through the maxima goes to the first maximal entry, as torch.max(dim) does in the reference
    c = volume(2, 3, 2, 2, 3, dtype=torch.float64).requires_grad_()
    w = torch.randn(c.shape, dtype=torch.float64)
    g1 = torch.autograd.grad((ops.mutual_matching(c) * w).sum(), c)[0]
    g2 = torch.autograd.grad((baselines.ncnet_mutual_matching(c.unsqueeze(1)).squeeze(1) * w).sum(), c)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


def test_opcheck():
    c = volume(2, 3, 2, 3, 2).requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.mutual_matching.default, (c, 1e-5))


def test_torch_compile_fullgraph():
    def f(a, b):
        return ops.mutual_matching(ops.corr4d(a, b, relu=True)).amax(dim=(3, 4))

    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 2, 3)
    assert_close(torch.compile(f, fullgraph=True)(a, b), f(a, b))


@pytest.mark.parametrize("c,match", [
    (torch.rand(2, 3, 3, 3), r"`corr` must be \(B, Hs, Ws, Ht, Wt\) or \(B, 1, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
    (torch.rand(2, 2, 3, 3, 3, 3), r"`corr` must be"),
    (torch.ones(1, 2, 2, 2, 2, dtype=torch.int64), r"`corr` must be a floating tensor"),
])
def test_bad_input(c, match):
    with pytest.raises(RuntimeError, match=match):
        ops.mutual_matching(c)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 4), wt=st.integers(1, 4),
       perm=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, hs, ws, ht, wt, perm, seed):
    c = volume(B, hs, ws, ht, wt, seed=seed)
    if perm:
        c = c.permute(0, 3, 4, 1, 2)
    assert_close(ops.mutual_matching(c), reference.mutual_matching(c))
