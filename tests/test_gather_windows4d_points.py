"""gather_windows4d_points (and _linear)'s own cases: the same windows as gather_windows4d, values by hand,
determinism under point order, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semcorr_ext import ops, reference
from op_contract import points
from op_rows_patchmatch import check_window_backward


def volume(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_same_windows_as_gather_windows4d():
    corr = volume(2, 4, 5, 6, 3)
    cand = torch.randint(-2, 8, (2, 4, 5, 3, 2), generator=torch.Generator().manual_seed(1))
    b, i, j, _ = torch.meshgrid(*[torch.arange(s) for s in cand.shape[:4]], indexing="ij")
    p = torch.stack([b, i, j, cand[..., 0], cand[..., 1]], -1).view(-1, 5)
    expected = ops.gather_windows4d(corr, cand, 3).reshape(-1, 3, 3, 3, 3)
    assert torch.equal(ops.gather_windows4d_points(corr, p, 3), expected)
    g = volume(*expected.shape, seed=2)
    (g1,) = torch.autograd.grad(ops.gather_windows4d(corr.requires_grad_(), cand, 3), corr, g.view(2, 4, 5, 3,
                                                                                                    3, 3, 3, 3))
    (g2,) = torch.autograd.grad(ops.gather_windows4d_points(corr, p, 3), corr, g)
    assert torch.equal(g1, g2)  # the same windows in the same order: the same additions


def test_values_by_hand():
    corr = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(1, 2, 2, 3, 3)  # corr[0, i, j, u, v] = 9(2i+j)+3u+v
    p = torch.tensor([[0, 1, 1, 2, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, -1, 0, 1, 1]])
    out = ops.gather_windows4d_points(corr, p, 3)
    assert out[0, 1, 1, 1, 1] == 34 and out[0, 1, 1, 2].tolist() == [0, 0, 0]
    assert out[1, 1, 1].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]] and out[1, 0].abs().sum() == 0
    assert out[2].abs().sum() == 0  # batch 1 does not exist
    assert out[3, 2, 1, 1, 1] == corr[0, 0, 0, 1, 1] and out[3, :2].abs().sum() == 0  # centre one row above


def test_six_dim_layout_and_non_contiguous():
    corr = volume(2, 4, 3, 5, 4).permute(0, 3, 4, 1, 2)  # (2, 5, 4, 4, 3), not contiguous
    p = points(12, corr.shape).t().contiguous().t()
    assert not corr.is_contiguous() and not p.is_contiguous()
    expected = reference.gather_windows4d_points(corr, p, 3)
    assert torch.equal(ops.gather_windows4d_points(corr, p, 3), expected)
    assert torch.equal(ops.gather_windows4d_points(corr.unsqueeze(1), p, 3), expected)


def test_backward_matches_reference_and_is_deterministic():
    corr = volume(2, 5, 4, 6, 5, dtype=torch.float32).requires_grad_()
    p = points(300, corr.shape)
    g = volume(300, 5, 5, 5, 5, dtype=torch.float32, seed=1)
    check_window_backward(ops.gather_windows4d_points, reference.gather_windows4d_points, corr, p, g)


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 4), wt=st.integers(1, 4),
       M=st.integers(1, 20), w=st.sampled_from([1, 3, 5]), seed=st.integers(0, 2**16))
def test_fuzz(B, hs, ws, ht, wt, M, w, seed):
    corr = volume(B, hs, ws, ht, wt, seed=seed).requires_grad_()
    p = points(M, corr.shape, seed=seed)
    out = ops.gather_windows4d_points(corr, p, w)
    expected = reference.gather_windows4d_points(corr, p, w)
    assert torch.equal(out, expected)
    g = volume(*out.shape, seed=seed + 1)
    (ga,) = torch.autograd.grad(out, corr, g)
    (gb,) = torch.autograd.grad(expected, corr, g)
    torch.testing.assert_close(ga, gb)


# ---------------------------------------------------------------------------------------- gather_windows4d_linear


def test_linear_values_by_hand():
    corr = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(1, 2, 2, 3, 3)
    p = torch.tensor([[0, 1, 1, 2, 1]])
    weight = torch.zeros(2, 3, 3, 3, 3)
    weight[0, 1, 1, 1, 1] = 2.0  # twice the centre
    weight[1] = 1.0  # the window's sum
    out = ops.gather_windows4d_linear(corr, p, weight, torch.tensor([0.5, 0.0]))
    assert out.tolist() == [[68.5, float(ops.gather_windows4d_points(corr, p, 3).sum())]]
