"""mutual_matching's own cases: NC-Net's MutualMatching, values by hand, gradient routing, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.baselines_correlation import ncnet_mutual_matching
from semcorr_ext import ops, reference
from conftest import assert_close
from op_rows_correlation import volume


def test_matches_ncnet():
    c = volume(2, 1, 4, 3, 5, 4)
    assert_close(ops.mutual_matching(c), ncnet_mutual_matching(c), rtol=1e-6, atol=0)


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


def test_gradient_matches_torch_max_routing():
    # the gradient through the maxima goes to the first maximal entry, as torch.max(dim) does in the reference
    c = volume(2, 3, 2, 2, 3, dtype=torch.float64).requires_grad_()
    w = torch.randn(c.shape, dtype=torch.float64)
    g1 = torch.autograd.grad((ops.mutual_matching(c) * w).sum(), c)[0]
    g2 = torch.autograd.grad((ncnet_mutual_matching(c.unsqueeze(1)).squeeze(1) * w).sum(), c)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 4), wt=st.integers(1, 4),
       perm=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, hs, ws, ht, wt, perm, seed):
    c = volume(B, hs, ws, ht, wt, seed=seed)
    if perm:
        c = c.permute(0, 3, 4, 1, 2)
    assert_close(ops.mutual_matching(c), reference.mutual_matching(c))
