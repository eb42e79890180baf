"""gather_windows4d's own cases: a plain unfold baseline, values by hand, the 6-D layout, determinism,
fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import functools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_patchmatch
from semcorr_ext import ops, reference
from op_contract import grid_pairs
from op_rows_patchmatch import check_window_backward

cands = functools.partial(grid_pairs, spill=3)  # candidates up to 3 cells outside the target grid


def volume(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_matches_unfold_baseline():
    corr = volume(2, 6, 5, 7, 4, dtype=torch.float32)
    c = cands(2, 6, 5, 4, 7, 4, spill=0)
    assert torch.equal(ops.gather_windows4d(corr, c, 5), baselines_patchmatch.windows_unfold(corr, c, 5))


def test_values_by_hand():
    corr = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(1, 2, 2, 3, 3)
    c = torch.tensor([[0, 0], [2, 1]]).view(1, 1, 1, 2, 2).expand(1, 2, 2, 2, 2).contiguous()
    out = ops.gather_windows4d(corr, c, 3)  # window centred at source (i, j), candidate (u, v)
    # pixel (0, 0), candidate (0, 0): source offsets a, e in {-1, 0, 1}; only (0, 0), (0, 1), (1, 0), (1, 1) exist
    w = out[0, 0, 0, 0]
    assert w[1, 1].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]  # corr[0, 0, 0, u, v] = 3u + v
    assert w[2, 2, 2, 2] == corr[0, 1, 1, 1, 1] and w[0].abs().sum() == 0 and w[:, 0].abs().sum() == 0
    # pixel (1, 1), candidate (2, 1): centre corr[0, 1, 1, 2, 1] = 27 + 7
    assert out[0, 1, 1, 1, 1, 1, 1, 1] == 34 and out[0, 1, 1, 1, 1, 1, 2].tolist() == [0, 0, 0]


def test_six_dim_ncnet_layout():
    corr = volume(1, 3, 3, 4, 4)
    c = cands(1, 3, 3, 2, 4, 4)
    assert torch.equal(ops.gather_windows4d(corr.unsqueeze(1), c), ops.gather_windows4d(corr, c))


def test_non_contiguous():
    corr = volume(2, 4, 3, 5, 4).permute(0, 3, 4, 1, 2)  # (2, 5, 4, 4, 3)
    c = cands(2, 4, 5, 3, 4, 3).transpose(1, 2)
    assert not corr.is_contiguous() and not c.is_contiguous()
    assert torch.equal(ops.gather_windows4d(corr, c, 3), reference.gather_windows4d(corr, c, 3))


def test_backward_matches_reference_and_is_deterministic():
    corr = volume(2, 5, 4, 6, 5, dtype=torch.float32).requires_grad_()
    c = cands(2, 5, 4, 6, 6, 5)
    g = volume(2, 5, 4, 6, 5, 5, 5, 5, dtype=torch.float32, seed=1)
    check_window_backward(ops.gather_windows4d, reference.gather_windows4d, corr, c, g)


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 4), wt=st.integers(1, 4),
       N=st.integers(1, 3), w=st.sampled_from([1, 3, 5]), perm=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz(B, hs, ws, ht, wt, N, w, perm, seed):
    corr = volume(B, hs, ws, ht, wt, seed=seed)
    if perm:
        corr = corr.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    c = cands(B, hs, ws, N, ht, wt, seed=seed)
    assert torch.equal(ops.gather_windows4d(corr, c, w), reference.gather_windows4d(corr, c, w))
