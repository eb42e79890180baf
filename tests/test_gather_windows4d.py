"""gather_windows4d: CPU op vs the reference and a plain unfold baseline; values by hand, gradients (gradcheck,
determinism, double backward), opcheck, torch.compile, bad input, fuzzing."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_pmnc
from semcorr_ext import ops, reference


def volume(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def cands(B, Hs, Ws, N, Ht, Wt, seed=0, spill=3):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(-spill, Ht + spill, (B, Hs, Ws, N, 1), generator=g)
    c = torch.randint(-spill, Wt + spill, (B, Hs, Ws, N, 1), generator=g)
    return torch.cat([r, c], -1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,N,w", [((2, 4, 5, 6, 3), 3, 5), ((1, 1, 1, 1, 1), 2, 3), ((1, 3, 2, 4, 4), 1, 1),
                                       ((2, 5, 5, 5, 5), 4, 7)])
def test_matches_reference(dtype, shape, N, w):
    corr = volume(*shape, dtype=dtype)
    c = cands(*shape[:3], N, *shape[3:])
    out = ops.gather_windows4d(corr, c, w)
    assert out.shape == (*shape[:3], N, w, w, w, w)
    assert torch.equal(out, reference.gather_windows4d(corr, c, w))


def test_matches_unfold_baseline():
    corr = volume(2, 6, 5, 7, 4, dtype=torch.float32)
    c = cands(2, 6, 5, 4, 7, 4, spill=0)
    assert torch.equal(ops.gather_windows4d(corr, c, 5), baselines_pmnc.windows_unfold(corr, c, 5))


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


@pytest.mark.parametrize("shape,N", [((0, 2, 2, 2, 2), 2), ((1, 2, 2, 2, 2), 0), ((1, 2, 2, 0, 3), 2)])
def test_empty(shape, N):
    corr = torch.rand(*shape, requires_grad=True)
    c = torch.zeros(*shape[:3], N, 2, dtype=torch.int64)
    out = ops.gather_windows4d(corr, c, 3)
    assert out.shape == (*shape[:3], N, 3, 3, 3, 3)
    assert out.abs().sum() == 0
    out.sum().backward()
    assert corr.grad.shape == corr.shape and corr.grad.abs().sum() == 0


@pytest.mark.parametrize("w", [1, 3, 5])
def test_gradcheck(w):
    corr = volume(1, 3, 4, 3, 4).requires_grad_()
    c = cands(1, 3, 4, 3, 3, 4, spill=2)
    c[0, 0, 0, 1] = c[0, 0, 0, 0]  # a duplicate candidate: its window's gradient counts twice
    # fast mode (random projections): the full Jacobian has one backward call per output element (N w^4 per pixel)
    assert torch.autograd.gradcheck(lambda x: ops.gather_windows4d(x, c, w), (corr,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda x: ops.gather_windows4d(x, c, w), (corr,), fast_mode=True)
    if w == 3:
        small, cs = corr[:, :2, :2, :2, :3].detach().clone().requires_grad_(), c[:, :2, :2, :1].clamp(0, 1)
        assert torch.autograd.gradcheck(lambda x: ops.gather_windows4d(x, cs, w), (small,))


def test_backward_matches_reference_and_is_deterministic():
    corr = volume(2, 5, 4, 6, 5, dtype=torch.float32).requires_grad_()
    c = cands(2, 5, 4, 6, 6, 5)
    g = volume(2, 5, 4, 6, 5, 5, 5, 5, dtype=torch.float32, seed=1)
    (g1,) = torch.autograd.grad(ops.gather_windows4d(corr, c), corr, g)
    (g2,) = torch.autograd.grad(ops.gather_windows4d(corr, c), corr, g)
    (gr,) = torch.autograd.grad(reference.gather_windows4d(corr.double(), c), corr, g.double())
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1, gr.float(), rtol=1e-5, atol=1e-5)


def test_opcheck():
    corr = volume(1, 3, 3, 4, 3, dtype=torch.float32).requires_grad_()
    c = cands(1, 3, 3, 2, 4, 3)
    torch.library.opcheck(torch.ops.semcorr.gather_windows4d.default, (corr, c, 3))


def test_torch_compile_fullgraph():
    c = cands(2, 3, 3, 2, 3, 4)

    def f(a, b):
        return ops.gather_windows4d(ops.corr4d(a, b), c, 3).amax(dim=(-4, -3, -2, -1))

    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 4)
    torch.testing.assert_close(torch.compile(f, fullgraph=True)(a, b), f(a, b))


@pytest.mark.parametrize("corr,cand,w,match", [
    (torch.rand(2, 3, 3, 3), torch.zeros(2, 3, 3, 1, 2, dtype=torch.int64), 3,
     r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 1, 3, dtype=torch.int64), 3,
     r"`candidates` must be a 5-D tensor \(B, Hs, Ws, N, 2\)"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 3, 1, 2, dtype=torch.int64), 3,
     r"`candidates` must be \(B, Hs, Ws, N, 2\) with \(B, Hs, Ws\) of `corr`"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 1, 2), 3, r"`candidates` must be int64"),
    (torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 1, 2, dtype=torch.int64), 4, r"`window` must be odd"),
    (torch.ones(1, 2, 2, 2, 2, dtype=torch.int64), torch.zeros(1, 2, 2, 1, 2, dtype=torch.int64), 3,
     r"`corr` must be a floating tensor"),
])
def test_bad_input(corr, cand, w, match):
    with pytest.raises(RuntimeError, match=match):
        ops.gather_windows4d(corr, cand, w)


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 4), wt=st.integers(1, 4),
       N=st.integers(1, 3), w=st.sampled_from([1, 3, 5]), perm=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz(B, hs, ws, ht, wt, N, w, perm, seed):
    corr = volume(B, hs, ws, ht, wt, seed=seed)
    if perm:
        corr = corr.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    c = cands(B, hs, ws, N, ht, wt, seed=seed)
    assert torch.equal(ops.gather_windows4d(corr, c, w), reference.gather_windows4d(corr, c, w))
