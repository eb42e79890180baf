"""corr4d's own cases: values by hand, the published pipelines, strides, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.baselines_correlation import (hpf_appearance_similarity, ncnet_feature_correlation, ncnet_feature_l2norm,
                                              sfnet_matching_layer)
from semcorr_ext import ops, reference
from conftest import assert_close



def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


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
    expected = ncnet_feature_correlation(ncnet_feature_l2norm(src), ncnet_feature_l2norm(tgt))
    assert_close(ops.corr4d(src, tgt), expected.squeeze(1))


def test_matches_hpf_appearance_similarity():
    src, tgt = rand(1, 32, 9, 1), rand(1, 32, 11, 1)  # HPF works on flattened hyperpixels (N, C)
    expected = hpf_appearance_similarity(src[0, :, :, 0].T, tgt[0, :, :, 0].T, exp1=3)
    out = ops.corr4d(src, tgt, relu=True, power=3.0, eps=0.0).reshape(9, 11)
    assert_close(out, expected)


def test_matches_sfnet_matching_layer():
    src, tgt = rand(2, 16, 5, 6), rand(2, 16, 4, 3)
    expected = sfnet_matching_layer(src, tgt)  # (B, Ht*Wt, Hs, Ws), target-major
    out = ops.corr4d(src, tgt, relu=True).permute(0, 3, 4, 1, 2).reshape(2, 12, 5, 6)
    assert_close(out, expected)


def test_non_contiguous():
    src = rand(2, 5, 8, 6).transpose(2, 3)  # (2, 5, 6, 8) non-contiguous
    tgt = rand(2, 7, 5, 4)[:, ::1, :, ::2].permute(0, 1, 2, 3)[:, :5]  # sliced channels and stride-2 width
    assert not src.is_contiguous() and not tgt.is_contiguous()
    assert_close(ops.corr4d(src, tgt, relu=True, power=2.0), reference.corr4d(src, tgt, relu=True, power=2.0))


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 2), C=st.integers(1, 9), hs=st.integers(1, 5), ws=st.integers(1, 5), ht=st.integers(1, 5),
       wt=st.integers(1, 5), transpose=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, C, hs, ws, ht, wt, transpose, relu, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(B, C, hs, ws, generator=g)
    tgt = torch.randn(B, C, wt, ht, generator=g).transpose(2, 3) if transpose else torch.randn(B, C, ht, wt, generator=g)
    assert_close(ops.corr4d(src, tgt, relu=relu), reference.corr4d(src, tgt, relu=relu))
