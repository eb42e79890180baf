"""gather_windows4d_points: CPU op vs the float64 reference and vs gather_windows4d on the same windows; values by
hand, gradients (gradcheck, determinism under point order, double backward), opcheck, torch.compile, bad input,
fuzzing."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semcorr_ext import ops, reference


def volume(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def points(M, shape, seed=0, spill=3):
    """M random (b, i, j, u, v), up to `spill` cells outside the volume in every coordinate (b by 1)."""
    g = torch.Generator().manual_seed(seed)
    cols = [torch.randint(-1, shape[0] + 1, (M,), generator=g)]
    cols += [torch.randint(-spill, n + spill, (M,), generator=g) for n in shape[1:]]
    return torch.stack(cols, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,M,w", [((2, 4, 5, 6, 3), 40, 5), ((1, 1, 1, 1, 1), 3, 3), ((1, 3, 2, 4, 4), 7, 1),
                                       ((2, 5, 5, 5, 5), 30, 7)])
def test_matches_reference(dtype, shape, M, w):
    corr = volume(*shape, dtype=dtype)
    p = points(M, shape)
    out = ops.gather_windows4d_points(corr, p, w)
    assert out.shape == (M, w, w, w, w)
    assert torch.equal(out, reference.gather_windows4d_points(corr, p, w))


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


@pytest.mark.parametrize("shape,M", [((0, 2, 2, 2, 2), 3), ((1, 2, 2, 2, 2), 0), ((1, 2, 2, 0, 3), 2)])
def test_empty(shape, M):
    corr = torch.rand(*shape, requires_grad=True)
    out = ops.gather_windows4d_points(corr, torch.zeros(M, 5, dtype=torch.int64), 3)
    assert out.shape == (M, 3, 3, 3, 3) and out.abs().sum() == 0
    out.sum().backward()
    assert corr.grad.shape == corr.shape and corr.grad.abs().sum() == 0


@pytest.mark.parametrize("w", [1, 3, 5])
def test_gradcheck(w):
    corr = volume(2, 3, 4, 3, 4).requires_grad_()
    p = points(9, corr.shape, spill=2)
    p[1] = p[0]  # a repeated point: its window's gradient counts twice
    assert torch.autograd.gradcheck(lambda x: ops.gather_windows4d_points(x, p, w), (corr,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda x: ops.gather_windows4d_points(x, p, w), (corr,), fast_mode=True)
    if w == 3:
        small = corr[:1, :2, :2, :2, :3].detach().clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda x: ops.gather_windows4d_points(x, p[:4], w), (small,))


def test_backward_matches_reference_and_is_deterministic():
    corr = volume(2, 5, 4, 6, 5, dtype=torch.float32).requires_grad_()
    p = points(300, corr.shape)
    g = volume(300, 5, 5, 5, 5, dtype=torch.float32, seed=1)
    (g1,) = torch.autograd.grad(ops.gather_windows4d_points(corr, p), corr, g)
    (g2,) = torch.autograd.grad(ops.gather_windows4d_points(corr, p), corr, g)
    (gr,) = torch.autograd.grad(reference.gather_windows4d_points(corr.double(), p), corr, g.double())
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1, gr.float(), rtol=1e-5, atol=1e-5)


def test_opcheck():
    corr = volume(1, 3, 3, 4, 3, dtype=torch.float32).requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.gather_windows4d_points.default, (corr, points(6, corr.shape), 3))


def test_torch_compile_fullgraph():
    p = points(7, (2, 3, 3, 3, 4))

    def f(a, b):
        return ops.gather_windows4d_points(ops.corr4d(a, b), p, 3).amax(dim=(-4, -3, -2, -1))

    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 4)
    torch.testing.assert_close(torch.compile(f, fullgraph=True)(a, b), f(a, b))


@pytest.mark.parametrize("corr,pts,w,match", [
    (torch.rand(2, 3, 3, 3), torch.zeros(1, 5, dtype=torch.int64), 3,
     r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(3, 4, dtype=torch.int64), 3,
     r"`points` must be a 2-D tensor \(M, 5\) of \(b, i, j, u, v\), got shape \[3, 4\]"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(3, 5), 3, r"`points` must be int64"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(3, 5, dtype=torch.int64), 4, r"`window` must be odd"),
    (torch.ones(1, 2, 2, 2, 2, dtype=torch.int64), torch.zeros(3, 5, dtype=torch.int64), 3,
     r"`corr` must be a floating tensor"),
])
def test_bad_input(corr, pts, w, match):
    with pytest.raises(RuntimeError, match=r"semcorr::gather_windows4d_points: " + match):
        ops.gather_windows4d_points(corr, pts, w)


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
def linear_args(M, shape, C=4, w=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed + 7)
    return (volume(*shape, dtype=dtype, seed=seed), points(M, shape, seed=seed),
            torch.randn(C, w, w, w, w, generator=g, dtype=dtype), torch.randn(C, generator=g, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,M,C,w", [((2, 4, 5, 6, 3), 40, 7, 5), ((1, 1, 1, 1, 1), 3, 1, 3),
                                         ((1, 6, 6, 6, 6), 700, 32, 5), ((2, 3, 2, 4, 4), 9, 3, 1)])
def test_linear_matches_reference(dtype, shape, M, C, w):
    corr, p, weight, bias = linear_args(M, shape, C, w, dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    out = ops.gather_windows4d_linear(corr, p, weight, bias)  # 700 points: several tiles per task
    assert out.shape == (M, C)
    torch.testing.assert_close(out, reference.gather_windows4d_linear(corr, p, weight, bias), **tol)
    torch.testing.assert_close(ops.gather_windows4d_linear(corr, p, weight),
                               reference.gather_windows4d_linear(corr, p, weight), **tol)


def test_linear_values_by_hand():
    corr = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(1, 2, 2, 3, 3)
    p = torch.tensor([[0, 1, 1, 2, 1]])
    weight = torch.zeros(2, 3, 3, 3, 3)
    weight[0, 1, 1, 1, 1] = 2.0  # twice the centre
    weight[1] = 1.0  # the window's sum
    out = ops.gather_windows4d_linear(corr, p, weight, torch.tensor([0.5, 0.0]))
    assert out.tolist() == [[68.5, float(ops.gather_windows4d_points(corr, p, 3).sum())]]


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradcheck(with_bias):
    corr, p, weight, bias = linear_args(12, (1, 3, 3, 3, 4), C=3, w=3)
    p[1] = p[0]
    args = (corr.requires_grad_(), weight.requires_grad_()) + ((bias.requires_grad_(),) if with_bias else ())
    fn = lambda c, w, *b: ops.gather_windows4d_linear(c, p, w, *b)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args, fast_mode=True)


def test_linear_opcheck_and_compile():
    corr, p, weight, bias = linear_args(6, (1, 3, 3, 4, 3), dtype=torch.float32)
    torch.library.opcheck(torch.ops.semcorr.gather_windows4d_linear.default,
                          (corr.requires_grad_(), p, weight.requires_grad_(), bias.requires_grad_()))
    torch.library.opcheck(torch.ops.semcorr.gather_windows4d_linear.default, (corr, p, weight, None))

    def f(c, w, b):
        return ops.gather_windows4d_linear(c.relu(), p, w, b).sum(1)

    torch.testing.assert_close(torch.compile(f, fullgraph=True)(corr, weight, bias), f(corr, weight, bias))


@pytest.mark.parametrize("kw,match", [
    (dict(weight=torch.zeros(2, 3, 3, 3)), r"`weight` must be a 5-D tensor \(C, w, w, w, w\)"),
    (dict(weight=torch.zeros(2, 3, 3, 5, 3)), r"`weight` must be \(C, w, w, w, w\) with one window side w"),
    (dict(weight=torch.zeros(2, 4, 4, 4, 4)), r"`window` must be odd"),
    (dict(weight=torch.zeros(2, 3, 3, 3, 3, dtype=torch.float64)), r"`corr` and `weight` must have the same dtype"),
    (dict(bias=torch.zeros(3)), r"`bias` must be \(C\) = \(2\), got shape \[3\]"),
    (dict(points=torch.zeros(3, 4, dtype=torch.int64)), r"`points` must be a 2-D tensor \(M, 5\)"),
])
def test_linear_bad_input(kw, match):
    args = dict(corr=torch.rand(1, 2, 2, 2, 2), points=torch.zeros(3, 5, dtype=torch.int64),
                weight=torch.zeros(2, 3, 3, 3, 3), bias=None)
    args.update(kw)
    with pytest.raises(RuntimeError, match=r"semcorr::gather_windows4d_linear: " + match):
        ops.gather_windows4d_linear(**args)


def test_linear_empty():
    corr, _, weight, bias = linear_args(1, (1, 2, 2, 2, 2))
    out = ops.gather_windows4d_linear(corr, torch.zeros(0, 5, dtype=torch.int64), weight, bias)
    assert out.shape == (0, 4)
    assert ops.gather_windows4d_linear(corr, points(3, corr.shape), weight[:0], bias[:0]).shape == (3, 0)
