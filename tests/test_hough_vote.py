"""hough_vote's own cases: plain (one-hot) PHM, values by hand, int32 bins, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_hough as bh
from semcorr_ext import ops, reference
from conftest import assert_close
from op_contract import vote_inputs as make
from op_rows_hough import KERNELS


def test_matches_plain_phm():
    g = torch.Generator().manual_seed(0)
    sc, tc = torch.rand(20, 2, generator=g) * 100, torch.rand(25, 2, generator=g) * 100
    bins = bh.phm_offset_bins(sc, tc, 20.0, 10, 10, 100.0, 100.0)
    app = torch.rand(20, 25, generator=g)
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    for kern in (None, k):
        expected = bh.phm_dense(app, bins, (10, 10), kern)
        assert_close(ops.hough_vote(app[None], bins[None], (10, 10), smooth_kernel=kern)[0], expected)


def test_values_by_hand():
    app = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    bins = torch.tensor([[[0, 1, -1], [1, 2, 0]]])
    # votes: bin0 = 1 + 6 = 7, bin1 = 2 + 4 = 6, bin2 = 5
    assert torch.equal(ops.hough_vote(app, bins, 3), torch.tensor([[[7.0, 12.0, 0.0], [24.0, 25.0, 42.0]]]))
    # kernel [1, 1, 1]: bin0 = 7 + 6 = 13, bin1 = 18, bin2 = 11
    out = ops.hough_vote(app, bins, (3,), smooth_kernel=torch.ones(3))
    assert torch.equal(out, torch.tensor([[[13.0, 36.0, 0.0], [72.0, 55.0, 78.0]]]))
    # asymmetric kernel [a, b, c] is a cross-correlation: v[p] = a*h[p-1] + b*h[p] + c*h[p+1]
    out = ops.hough_vote(app, bins, (3,), smooth_kernel=torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(out, torch.tensor([[[0.0, 14.0, 0.0], [28.0, 30.0, 0.0]]]))


def test_int32_bins_and_cpu_kernel():
    app, bins = make(1, 5, 6, (4, 4))
    assert_close(ops.hough_vote(app, bins.int(), (4, 4), smooth_kernel=KERNELS[2].double()),
                 reference.hough_vote(app, bins, (4, 4), smooth_kernel=KERNELS[2]))


def test_non_contiguous():
    app, bins = make(2, 8, 9, (5,))
    a_nc, b_nc = app.transpose(1, 2).contiguous().transpose(1, 2), bins.transpose(1, 2).contiguous().transpose(1, 2)
    assert_close(ops.hough_vote(a_nc, b_nc, 5), reference.hough_vote(app, bins, 5))


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), Ns=st.integers(1, 12), Nt=st.integers(1, 12),
       nbins=st.lists(st.integers(1, 6), min_size=1, max_size=3), smooth=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz(B, Ns, Nt, nbins, smooth, seed):
    app, bins = make(B, Ns, Nt, nbins, seed=seed)
    k = torch.rand(*[3] * len(nbins), generator=torch.Generator().manual_seed(seed)) if smooth else None
    assert_close(ops.hough_vote(app, bins, nbins, smooth_kernel=k),
                 reference.hough_vote(app, bins, nbins, smooth_kernel=k))
