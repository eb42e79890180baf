"""corr4d_topk's own cases: Sparse NC-Net's dense top-k, ties, tiles, the dense gradient, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_sparse
from semcorr_ext import ops, reference
from conftest import assert_close


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def check_against_reference(src, tgt, k, **flags):
    v, i = ops.corr4d_topk(src, tgt, k, **flags)
    rv, ri = reference.corr4d_topk(src, tgt, k, **flags)
    assert v.shape == (src.shape[0], src.shape[2], src.shape[3], k) and v.dtype == src.dtype
    assert i.shape == v.shape and i.dtype == torch.int64
    assert_close(v, rv)
    assert torch.equal(i, ri)  # random data: no ties


def test_crosses_cpu_tiles():
    # Ns = 1089 > 1024 source rows per tile; Nt = 1600 > 1024 target columns per tile
    check_against_reference(rand(1, 4, 33, 33, dtype=torch.float64), rand(1, 4, 40, 40, dtype=torch.float64, seed=1), 7)


def test_values_by_hand():
    src = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 1, 2)  # positions e1, 2*e2
    tgt = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [1.0, 1.0]]).T.reshape(1, 2, 1, 3)  # 3e1, -e1, e1+e2
    v, i = ops.corr4d_topk(src, tgt, 2, eps=0.0)
    s = 2 ** -0.5
    torch.testing.assert_close(v, torch.tensor([[[[1.0, s], [s, 0.0]]]]))
    assert i.tolist() == [[[[0, 2], [2, 0]]]]  # second row: 0 and 0 tie -> smaller index (0, not 1)
    v, i = ops.corr4d_topk(src, tgt, 3, normalize=False)
    torch.testing.assert_close(v, torch.tensor([[[[3.0, 1.0, -1.0], [2.0, 0.0, 0.0]]]]))
    assert i.tolist() == [[[[0, 2, 1], [2, 0, 1]]]]


def test_ties_go_to_smaller_index():
    src = rand(2, 3, 4, 5)
    tgt = rand(2, 3, 1, 1).expand(2, 3, 7, 9)  # every target position identical: all values tie
    v, i = ops.corr4d_topk(src, tgt, 6)
    assert torch.equal(i, torch.arange(6).expand(2, 4, 5, 6))
    assert torch.equal(v, v[..., :1].expand_as(v))


def test_matches_sparse_ncnet_topk():
    src, tgt = rand(2, 16, 6, 5), rand(2, 16, 4, 7, seed=1)
    ev, ei = baselines_sparse.sparse_ncnet_topk(src, tgt, 10)
    v, i = ops.corr4d_topk(src, tgt, 10)
    assert_close(v, ev)
    assert torch.equal(i, ei)


def test_k_equals_all_targets_is_sorted_volume():
    src, tgt = rand(1, 5, 3, 4), rand(1, 5, 2, 3, seed=1)
    v, i = ops.corr4d_topk(src, tgt, 6)
    corr = ops.corr4d(src, tgt).reshape(1, 3, 4, 6)
    assert_close(v, torch.gather(corr, -1, i))
    assert (v[..., :-1] >= v[..., 1:]).all()
    assert torch.equal(i.sort(-1).values, torch.arange(6).expand(1, 3, 4, 6))


def test_non_contiguous():
    src = rand(2, 5, 8, 6).transpose(2, 3)
    tgt = rand(2, 7, 5, 8, seed=1)[:, :5, :, ::2]
    assert not src.is_contiguous() and not tgt.is_contiguous()
    check_against_reference(src, tgt, 4)


def test_zero_channels_gives_zeros_and_first_indices():
    v, i = ops.corr4d_topk(rand(2, 0, 3, 3), rand(2, 0, 2, 2), 3)
    assert torch.equal(v, torch.zeros(2, 3, 3, 3)) and torch.equal(i, torch.arange(3).expand(2, 3, 3, 3))


def test_gradient_matches_dense_autograd():
    src = rand(2, 6, 4, 3, dtype=torch.float64).requires_grad_()
    tgt = rand(2, 6, 3, 5, dtype=torch.float64, seed=1).requires_grad_()
    w = rand(2, 4, 3, 4, dtype=torch.float64, seed=2)
    v, i = ops.corr4d_topk(src, tgt, 4)
    g1 = torch.autograd.grad((v * w).sum(), (src, tgt))
    dense = reference.corr4d(src, tgt).reshape(2, 4, 3, 15)
    g2 = torch.autograd.grad((torch.gather(dense, -1, i) * w).sum(), (src, tgt))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_backward_rejects_bad_indices():
    src, tgt = rand(1, 2, 2, 2), rand(1, 2, 2, 2)
    v, i = ops.corr4d_topk(src, tgt, 2)
    with pytest.raises(RuntimeError, match=r"`indices` must be in \[0, Ht\*Wt\) = \[0, 4\)"):
        torch.ops.semcorr._corr4d_topk_backward(torch.ones_like(v), src, tgt, v, i + 4, True, 1e-6)
    with pytest.raises(RuntimeError, match=r"`grad` must have shape"):
        torch.ops.semcorr._corr4d_topk_backward(torch.ones(1, 2, 2, 3), src, tgt, v, i, True, 1e-6)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 2), C=st.integers(1, 9), hs=st.integers(1, 5), ws=st.integers(1, 5), ht=st.integers(1, 5),
       wt=st.integers(1, 5), transpose=st.booleans(), normalize=st.booleans(), kfrac=st.floats(0, 1),
       seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, C, hs, ws, ht, wt, transpose, normalize, kfrac, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(B, C, hs, ws, generator=g, dtype=torch.float64)
    tgt = (torch.randn(B, C, wt, ht, generator=g, dtype=torch.float64).transpose(2, 3) if transpose
           else torch.randn(B, C, ht, wt, generator=g, dtype=torch.float64))
    k = int(round(kfrac * ht * wt))
    v, i = ops.corr4d_topk(src, tgt, k, normalize=normalize)
    rv, ri = reference.corr4d_topk(src, tgt, k, normalize=normalize)
    assert_close(v, rv, rtol=1e-12, atol=1e-12)
    # with C == 1 many values tie exactly in float64 only if the reference agrees on rounding: compare values
    # of the chosen indices, and indices wherever the value is not tied with a neighbour
    dense = reference.corr4d(src, tgt, normalize=normalize).reshape(B, hs, ws, -1)
    assert_close(torch.gather(dense, -1, i), rv, rtol=1e-12, atol=1e-12)
