"""kernel_map4d + sparse_conv4d: CPU ops vs float64 references, the dense conv4d on a dense coordinate set,
MinkowskiEngine's semantics (dense conv of the zero-filled volume), gradients, opcheck, compile, errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_sparse
from semcorr_ext import ops, reference
from semcorr_ext.reference.sparse import conv4d_same
from conftest import assert_close


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def dense_coords(B, *dims):
    grids = torch.meshgrid(torch.arange(B), *[torch.arange(d) for d in dims], indexing="ij")
    return torch.stack(grids, -1).reshape(-1, 5)


def sparse_coords(B, dims, n, seed=0, dtype=torch.int64):
    """n distinct random points per batch inside dims (shuffled row order)."""
    g = torch.Generator().manual_seed(seed)
    full = dense_coords(1, *dims)[:, 1:]
    rows = []
    for b in range(B):
        pick = full[torch.randperm(full.shape[0], generator=g)[:n]]
        rows.append(torch.cat([torch.full((pick.shape[0], 1), b), pick], 1))
    c = torch.cat(rows)
    return c[torch.randperm(c.shape[0], generator=g)].to(dtype)


def kmap_tuple(km):
    return km.in_rows, km.out_rows, km.offsets_ptr


@pytest.mark.parametrize("ks", [3, (3, 1, 3, 5), 1])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_kernel_map_matches_reference(ks, dtype):
    coords = sparse_coords(2, (4, 5, 3, 6), 90, dtype=dtype)
    km = ops.kernel_map4d(coords, ks)
    for a, b in zip(kmap_tuple(km), reference.kernel_map4d(coords, ks)):
        assert torch.equal(a, b)
    K = 81 if ks == 3 else (45 if ks != 1 else 1)
    assert km.offsets_ptr.shape == (K + 1,) and km.kernel_size == ((ks,) * 4 if isinstance(ks, int) else ks)
    # the centre offset maps every point to itself
    c = K // 2
    p0, p1 = km.offsets_ptr[c].item(), km.offsets_ptr[c + 1].item()
    assert torch.equal(km.in_rows[p0:p1], torch.arange(coords.shape[0]))


def test_kernel_map_by_hand():
    coords = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 1], [0, 2, 0, 0, 0]])
    km = ops.kernel_map4d(coords, (1, 1, 1, 3))  # offsets (0,0,0,-1), (0,0,0,0), (0,0,0,+1)
    assert km.offsets_ptr.tolist() == [0, 1, 5, 6]
    assert km.in_rows.tolist() == [0, 0, 1, 2, 3, 1]   # row 1 reads row 0 at l-1; row 0 reads row 1 at l+1
    assert km.out_rows.tolist() == [1, 0, 1, 2, 3, 0]  # the batch index is never crossed (row 2 has no pair)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ks,bias", [(3, True), ((3, 1, 3, 5), False), (1, True)])
def test_matches_reference(dtype, ks, bias):
    coords = sparse_coords(2, (4, 5, 3, 6), 90)
    k4 = (ks,) * 4 if isinstance(ks, int) else ks
    f, w = rand(coords.shape[0], 3, dtype=dtype), rand(4, 3, *k4, dtype=dtype, seed=1)
    b = rand(4, dtype=dtype, seed=2) if bias else None
    out = ops.sparse_conv4d(f, coords, w, b)
    assert out.shape == (coords.shape[0], 4) and out.dtype == dtype
    assert_close(out, reference.sparse_conv4d(f, coords, w, b))


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


def test_empty():
    coords = torch.zeros(0, 5, dtype=torch.int64)
    km = ops.kernel_map4d(coords, 3)
    assert km.in_rows.numel() == 0 and km.offsets_ptr.tolist() == [0] * 82
    f = torch.zeros(0, 3, requires_grad=True)
    w = rand(2, 3, 3, 3, 3, 3).requires_grad_()
    b = rand(2).requires_grad_()
    out = ops.sparse_conv4d(f, coords, w, b)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w)) and torch.equal(b.grad, torch.zeros(2))


def test_isolated_points_get_only_centre_tap_and_bias():
    coords = torch.tensor([[0, 0, 0, 0, 0], [0, 5, 5, 5, 5], [1, 0, 0, 0, 0]])
    f, w, b = rand(3, 2), rand(4, 2, 3, 3, 3, 3, seed=1), rand(4, seed=2)
    out = ops.sparse_conv4d(f, coords, w, b)
    assert_close(out, f @ w[:, :, 1, 1, 1, 1].T + b)


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(bias):
    coords = sparse_coords(2, (3, 3, 2, 3), 25, seed=5)
    f = rand(coords.shape[0], 2, dtype=torch.float64).requires_grad_()
    w = rand(3, 2, 3, 1, 3, 3, dtype=torch.float64, seed=1).requires_grad_()
    b = rand(3, dtype=torch.float64, seed=2).requires_grad_() if bias else None
    km = ops.kernel_map4d(coords, (3, 1, 3, 3))
    inputs = (f, w, b) if bias else (f, w)
    fn = (lambda f, w, b: ops.sparse_conv4d(f, None, w, b, kernel_map=km)) if bias else \
        (lambda f, w: ops.sparse_conv4d(f, None, w, kernel_map=km))
    assert torch.autograd.gradcheck(fn, inputs)


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


def test_double_backward_raises_clearly():
    coords = sparse_coords(1, (3, 3, 3, 3), 20)
    f = rand(coords.shape[0], 2, dtype=torch.float64).requires_grad_()
    w = rand(2, 2, 3, 3, 3, 3, dtype=torch.float64).requires_grad_()
    (gf,) = torch.autograd.grad(ops.sparse_conv4d(f, coords, w).pow(2).sum(), (f,), create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gf.sum().backward()


def test_opcheck():
    coords = sparse_coords(2, (3, 3, 3, 3), 30)
    km = ops.kernel_map4d(coords, 3)
    f = rand(coords.shape[0], 3).requires_grad_()
    w = rand(2, 3, 3, 3, 3, 3, seed=1).requires_grad_()
    b = rand(2, seed=2).requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.sparse_conv4d.default, (f, w, b, *kmap_tuple(km)))
    torch.library.opcheck(torch.ops.semcorr.sparse_conv4d.default, (f, w, None, *kmap_tuple(km)))
    torch.library.opcheck(torch.ops.semcorr.kernel_map4d.default, (coords, [3]),
                          test_utils=("test_schema", "test_faketensor"))


def test_torch_compile_fullgraph():
    coords = sparse_coords(1, (4, 4, 3, 3), 40)
    km = ops.kernel_map4d(coords, 3)
    f, w, b = rand(coords.shape[0], 3), rand(3, 3, 3, 3, 3, 3, seed=1), rand(3, seed=2)
    w2 = rand(1, 3, 3, 3, 3, 3, seed=3)

    def net(f, w, b, w2, in_rows, out_rows, ptr):
        m = ops.KernelMap(in_rows, out_rows, ptr, (3, 3, 3, 3), f.shape[0])
        return ops.sparse_conv4d(torch.relu(ops.sparse_conv4d(f, None, w, b, kernel_map=m)), None, w2, kernel_map=m)

    args = (f, w, b, w2, *kmap_tuple(km))
    assert_close(torch.compile(net, fullgraph=True, backend="aot_eager")(*args), net(*args))
    # inductor, with a backward
    fr = f.clone().requires_grad_()
    loss = lambda f: net(f, w, b, w2, *kmap_tuple(km)).square().sum()
    g_expected = torch.autograd.grad(loss(fr), fr)[0]
    g = torch.autograd.grad(torch.compile(loss, fullgraph=True)(fr), fr)[0]
    assert_close(g, g_expected)


@pytest.mark.parametrize("coords,ks,match", [
    (torch.zeros(3, 4, dtype=torch.int64), 3, r"`coords` must have 5 columns"),
    (torch.zeros(3, 5), 3, r"`coords` must be int32 or int64, got Float"),
    (torch.tensor([[0, 0, 0, 0, 0], [0, 1, -1, 0, 0]]), 3, r"`coords` must be >= 0, got -1 in column 2"),
    (torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]), 3,
     r"unique rows, got a duplicate of \(0, 1, 0, 0, 0\) at rows 0 and 2"),
    (torch.zeros(1, 5, dtype=torch.int64), 2, r"`kernel_size` must be odd and >= 1"),
    (torch.zeros(1, 5, dtype=torch.int64), (3, 3), r"`kernel_size` must be an int or 4 ints"),
])
def test_kernel_map_bad_input(coords, ks, match):
    with pytest.raises((RuntimeError, ValueError), match=match):
        ops.kernel_map4d(coords, ks)


def test_conv_bad_input():
    coords = sparse_coords(1, (3, 3, 3, 3), 10)
    km = ops.kernel_map4d(coords, 3)
    f, w = rand(10, 3), rand(2, 3, 3, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"`weight` must be a 6-D tensor \(Cout, Cin, k1, k2, k3, k4\)"):
        ops.sparse_conv4d(f, coords, rand(2, 3, 3, 3, 3))
    with pytest.raises(RuntimeError, match=r"`weight` dim 1 \(Cin\) must equal `feats` dim 1"):
        ops.sparse_conv4d(f, coords, rand(2, 4, 3, 3, 3, 3))
    with pytest.raises(RuntimeError, match=r"`bias` must have shape \(Cout,\) = \(2\)"):
        ops.sparse_conv4d(f, coords, w, rand(3))
    with pytest.raises(RuntimeError, match=r"`feats` and `weight` must have the same dtype"):
        ops.sparse_conv4d(f.double(), coords, w)
    with pytest.raises(RuntimeError, match=r"`feats` must be a 2-D tensor"):
        ops.sparse_conv4d(f[None], None, w, kernel_map=km)
    with pytest.raises(ValueError, match=r"built for kernel size \(3, 3, 3, 3\) but `weight` has \(1, 1, 1, 1\)"):
        ops.sparse_conv4d(f, None, rand(2, 3, 1, 1, 1, 1), kernel_map=km)
    with pytest.raises(ValueError, match=r"built for 10 points but `feats` has 9 rows"):
        ops.sparse_conv4d(f[:9], None, w, kernel_map=km)
    # the raw op validates the map too
    with pytest.raises(RuntimeError, match=r"kernel map has 81 offsets but `weight` has k1\*k2\*k3\*k4 = 1"):
        torch.ops.semcorr.sparse_conv4d(f, rand(2, 3, 1, 1, 1, 1), None, *kmap_tuple(km))
    with pytest.raises(RuntimeError, match=r"`in_rows` must index rows of `feats` in \[0, 9\)"):
        torch.ops.semcorr.sparse_conv4d(f[:9], w, None, *kmap_tuple(km))
    with pytest.raises(RuntimeError, match=r"`in_rows` must be a 1-D int64 tensor"):
        torch.ops.semcorr.sparse_conv4d(f, w, None, km.in_rows.int(), km.out_rows, km.offsets_ptr)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), d=st.tuples(*[st.integers(1, 4)] * 4), frac=st.floats(0.05, 1.0),
       k=st.sampled_from([1, 3]), cin=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fuzz_coordinate_sets(B, d, frac, k, cin, seed):
    n = max(1, int(frac * d[0] * d[1] * d[2] * d[3]))
    coords = sparse_coords(B, d, n, seed=seed)
    f, w = rand(coords.shape[0], cin, dtype=torch.float64, seed=seed), rand(2, cin, k, k, k, k, dtype=torch.float64)
    assert_close(ops.sparse_conv4d(f, coords, w), reference.sparse_conv4d(f, coords, w), rtol=1e-12, atol=1e-12)
