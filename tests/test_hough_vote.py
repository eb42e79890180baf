"""hough_vote: CPU op vs float64 reference and plain (one-hot) PHM; gradients, opcheck, compile, errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_hough as bh
from semcorr_ext import ops, reference
from conftest import assert_close


def make(B, Ns, Nt, nbins, dtype=torch.float32, seed=0, p_none=0.2):
    g = torch.Generator().manual_seed(seed)
    total = 1
    for n in nbins:
        total *= n
    app = torch.rand(B, Ns, Nt, generator=g, dtype=torch.float64).to(dtype)
    bins = torch.randint(0, total, (B, Ns, Nt), generator=g)
    bins[torch.rand(B, Ns, Nt, generator=g) < p_none] = -1
    return app, bins


KERNELS = {1: torch.tensor([0.25, 0.5, 0.25]), 2: torch.rand(3, 5, generator=torch.Generator().manual_seed(3)),
           3: torch.rand(3, 3, 1, generator=torch.Generator().manual_seed(4))}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nbins", [(7,), (4, 6), (3, 4, 5), (1,)])
@pytest.mark.parametrize("smooth", [False, True])
def test_matches_reference(dtype, nbins, smooth):
    app, bins = make(2, 13, 17, nbins, dtype=dtype)
    k = KERNELS[len(nbins)] if smooth else None
    out = ops.hough_vote(app, bins, nbins, smooth_kernel=k)
    assert out.dtype == dtype and out.shape == app.shape
    assert_close(out, reference.hough_vote(app, bins, nbins, smooth_kernel=k))
    assert torch.all(out[bins < 0] == 0)


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


def test_non_contiguous_and_empty():
    app, bins = make(2, 8, 9, (5,))
    a_nc, b_nc = app.transpose(1, 2).contiguous().transpose(1, 2), bins.transpose(1, 2).contiguous().transpose(1, 2)
    assert_close(ops.hough_vote(a_nc, b_nc, 5), reference.hough_vote(app, bins, 5))
    for shape in [(0, 2, 3), (2, 0, 3), (2, 3, 0)]:
        a = torch.rand(shape, requires_grad=True)
        out = ops.hough_vote(a, torch.zeros(shape, dtype=torch.long), (4,))
        assert out.shape == shape
        out.sum().backward()
        assert a.grad.shape == shape


@pytest.mark.parametrize("nbins", [(6,), (3, 4), (2, 3, 3)])
def test_gradcheck(nbins):
    app, bins = make(2, 5, 4, nbins, dtype=torch.float64)
    k = KERNELS[len(nbins)].double()
    app.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: ops.hough_vote(a, bins, nbins, smooth_kernel=k), (app,))
    assert torch.autograd.gradcheck(lambda a: ops.hough_vote(a, bins, nbins), (app,))


def test_gradient_matches_reference_autograd():
    app, bins = make(2, 7, 6, (3, 5), dtype=torch.float64)
    k = KERNELS[2].double()
    app.requires_grad_()
    w = torch.randn(app.shape, dtype=torch.float64)
    g1 = torch.autograd.grad((ops.hough_vote(app, bins, (3, 5), smooth_kernel=k) * w).sum(), app)[0]
    g2 = torch.autograd.grad((reference.hough_vote(app, bins, (3, 5), smooth_kernel=k) * w).sum(), app)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


def test_double_backward_raises_clearly():
    app, bins = make(1, 3, 4, (5,), dtype=torch.float64)
    app.requires_grad_()
    (g,) = torch.autograd.grad(ops.hough_vote(app, bins, 5).pow(2).sum(), app, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


@pytest.mark.parametrize("with_kernel", [False, True])
def test_opcheck(with_kernel):
    app, bins = make(2, 4, 5, (3, 4))
    app.requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.hough_vote.default,
                          (app, bins, [3, 4], KERNELS[2] if with_kernel else None))


def test_torch_compile_fullgraph():
    app, bins = make(2, 4, 5, (3, 4))
    k = KERNELS[2]

    def f(a, b):
        return ops.hough_vote(a, b, (3, 4), smooth_kernel=k).sum(dim=1)

    assert_close(torch.compile(f, fullgraph=True, backend="aot_eager")(app, bins), f(app, bins))


APP, BINS = make(2, 3, 4, (5,))


@pytest.mark.parametrize("args,kwargs,match", [
    ((APP, BINS[0], (5,)), {}, r"`bins` must have the shape of `app` \[2, 3, 4\], got \[3, 4\]"),
    ((APP, BINS.float(), (5,)), {}, r"`bins` must be an int64 \(or int32\) tensor"),
    ((APP, BINS, (5, 1, 1, 1)), {}, r"`nbins` must hold 1 to 3 sizes"),
    ((APP, BINS, (5, 0)), {}, r"`nbins` sizes must be >= 1"),
    ((APP, BINS, (4,)), {}, r"`bins` must lie in \[-1, prod\(nbins\)\) = \[-1, 4\), got values in \[-1, 4\]"),
    ((APP, BINS - 1, (5,)), {}, r"`bins` must lie in \[-1, prod\(nbins\)\)"),
    ((APP, BINS, (5,)), dict(smooth_kernel=torch.ones(3, 3)), r"`smooth_kernel` must have len\(nbins\) = 1 dims"),
    ((APP, BINS, (5,)), dict(smooth_kernel=torch.ones(4)), r"`smooth_kernel` sizes must be odd"),
    ((APP, BINS, (5,)), dict(smooth_kernel=torch.ones(3, dtype=torch.long)), r"`smooth_kernel` must be a floating"),
    ((APP.long(), BINS, (5,)), {}, r"`app` must be a floating tensor"),
])
def test_bad_input(args, kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        ops.hough_vote(*args, **kwargs)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), Ns=st.integers(1, 12), Nt=st.integers(1, 12),
       nbins=st.lists(st.integers(1, 6), min_size=1, max_size=3), smooth=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz(B, Ns, Nt, nbins, smooth, seed):
    app, bins = make(B, Ns, Nt, nbins, seed=seed)
    k = torch.rand(*[3] * len(nbins), generator=torch.Generator().manual_seed(seed)) if smooth else None
    assert_close(ops.hough_vote(app, bins, nbins, smooth_kernel=k),
                 reference.hough_vote(app, bins, nbins, smooth_kernel=k))
