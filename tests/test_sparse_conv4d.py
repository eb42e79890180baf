"""kernel_map4d + sparse_conv4d's own cases: the dense conv4d on a dense coordinate set, MinkowskiEngine's
semantics (dense conv of the zero-filled volume), kernel-map reuse, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_sparse
from semcorr_ext import ops, reference
from semcorr_ext.reference.sparse import conv4d_same
from conftest import assert_close
from op_contract import dense_coords, sparse_coords


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def test_kernel_map_by_hand():
    coords = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 1], [0, 2, 0, 0, 0]])
    km = ops.kernel_map4d(coords, (1, 1, 1, 3))  # offsets (0,0,0,-1), (0,0,0,0), (0,0,0,+1)
    assert km.offsets_ptr.tolist() == [0, 1, 5, 6]
    assert km.in_rows.tolist() == [0, 0, 1, 2, 3, 1]   # row 1 reads row 0 at l-1; row 0 reads row 1 at l+1
    assert km.out_rows.tolist() == [1, 0, 1, 2, 3, 0]  # the batch index is never crossed (row 2 has no pair)


@pytest.mark.parametrize("dims,ks", [((4, 3, 5, 4), 3), ((3, 4, 2, 5), (3, 1, 3, 5)), ((2, 2, 2, 2), 5)])
def test_dense_coordinates_equal_conv4d(dims, ks):
    B, Cin, Cout = 2, 3, 2
    k4 = (ks,) * 4 if isinstance(ks, int) else ks
    x = rand(B, Cin, *dims)
    w, b = rand(Cout, Cin, *k4, seed=1), rand(Cout, seed=2)
    coords = dense_coords(B, *dims)  # row order (b, i, j, k, l) row-major = x's memory order
    feats = x.permute(0, 2, 3, 4, 5, 1).reshape(-1, Cin)
    out = ops.sparse_conv4d(feats, coords, w, b).reshape(B, *dims, Cout).permute(0, 5, 1, 2, 3, 4)
    torch.testing.assert_close(out, ops.conv4d(x, w, b), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.double(), conv4d_same(x, w, b), rtol=1e-5, atol=1e-5)


def test_matches_minkowski_semantics_dense_conv_of_zero_filled_volume():
    coords = sparse_coords(2, (5, 4, 5, 4), 120, seed=3)
    f, w, b = rand(coords.shape[0], 4), rand(3, 4, 3, 3, 3, 3, seed=1), rand(3, seed=2)
    expected = baselines_sparse.sparse_conv_via_dense(f, coords, w, b)
    assert_close(ops.sparse_conv4d(f, coords, w, b), expected, atol=1e-5)  # float32 sums of ~100 terms


def test_values_by_hand():
    coords = torch.tensor([[0, 1, 1, 1, 1], [0, 1, 1, 1, 2], [0, 3, 3, 3, 3]])
    f = torch.tensor([[1.0], [10.0], [100.0]])
    w = torch.zeros(1, 1, 3, 3, 3, 3)
    w[0, 0, 1, 1, 1, 1] = 2.0  # centre
    w[0, 0, 1, 1, 1, 2] = 3.0  # reads the neighbour at l + 1
    w[0, 0, 1, 1, 1, 0] = 5.0  # reads the neighbour at l - 1
    out = ops.sparse_conv4d(f, coords, w, torch.tensor([0.5]))
    assert out.flatten().tolist() == [2 + 30 + 0.5, 20 + 5 + 0.5, 200 + 0.5]


def test_kernel_map_reuse_and_determinism():
    coords = sparse_coords(1, (6, 6, 6, 6), 300, seed=4)
    km = ops.kernel_map4d(coords, 3)
    f = rand(coords.shape[0], 8)
    w1, w2 = rand(8, 8, 3, 3, 3, 3, seed=1), rand(2, 8, 3, 3, 3, 3, seed=2)
    a = ops.sparse_conv4d(torch.relu(ops.sparse_conv4d(f, None, w1, kernel_map=km)), None, w2, kernel_map=km)
    b = ops.sparse_conv4d(torch.relu(ops.sparse_conv4d(f, coords, w1)), coords, w2)
    assert torch.equal(a, b)


def test_isolated_points_get_only_centre_tap_and_bias():
    coords = torch.tensor([[0, 0, 0, 0, 0], [0, 5, 5, 5, 5], [1, 0, 0, 0, 0]])
    f, w, b = rand(3, 2), rand(4, 2, 3, 3, 3, 3, seed=1), rand(4, seed=2)
    out = ops.sparse_conv4d(f, coords, w, b)
    assert_close(out, f @ w[:, :, 1, 1, 1, 1].T + b)


def test_gradient_matches_reference_autograd():
    coords = sparse_coords(1, (4, 4, 4, 4), 60, seed=6)
    f = rand(coords.shape[0], 3, dtype=torch.float64).requires_grad_()
    w = rand(2, 3, 3, 3, 3, 3, dtype=torch.float64, seed=1).requires_grad_()
    b = rand(2, dtype=torch.float64, seed=2).requires_grad_()
    gout = rand(coords.shape[0], 2, dtype=torch.float64, seed=3)
    g1 = torch.autograd.grad((ops.sparse_conv4d(f, coords, w, b) * gout).sum(), (f, w, b))
    g2 = torch.autograd.grad((baselines_sparse.sparse_conv_via_dense(f, coords, w, b) * gout).sum(), (f, w, b))
    for a, e in zip(g1, g2):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), d=st.tuples(*[st.integers(1, 4)] * 4), frac=st.floats(0.05, 1.0),
       k=st.sampled_from([1, 3]), cin=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fuzz_coordinate_sets(B, d, frac, k, cin, seed):
    n = max(1, int(frac * d[0] * d[1] * d[2] * d[3]))
    coords = sparse_coords(B, d, n, seed=seed)
    f, w = rand(coords.shape[0], cin, dtype=torch.float64, seed=seed), rand(2, cin, k, k, k, k, dtype=torch.float64)
    assert_close(ops.sparse_conv4d(f, coords, w), reference.sparse_conv4d(f, coords, w), rtol=1e-12, atol=1e-12)
