"""kernel_soft_argmax: CPU op vs float64 reference and SFNet's published algorithm; gradients, opcheck,
compile, errors, fuzzing."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_soft_argmax as sfnet
from semcorr_ext import ops, reference
from conftest import assert_close


def volume(*shape, dtype=torch.float32, seed=0, relu=False):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(*shape, generator=g, dtype=dtype)
    return c.clamp(min=0) if relu else c


SETTINGS = [dict(), dict(sigma=None), dict(normalize=False, beta=3.0), dict(sigma=1.5, beta=10.0),
            dict(sigma=None, normalize=False, beta=2.0)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6), (1, 1, 1, 1, 1), (1, 2, 2, 1, 7), (2, 1, 3, 6, 1),
                                   (1, 3, 3, 9, 11)])
@pytest.mark.parametrize("kw", SETTINGS)
def test_matches_reference(dtype, shape, kw):
    c = volume(*shape, dtype=dtype)
    out = ops.kernel_soft_argmax(c, **kw)
    assert out.shape == shape[:3] + (2,) and out.dtype == dtype
    assert_close(out, reference.kernel_soft_argmax(c.double(), **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grid", [(20, 20), (9, 13)])
@pytest.mark.parametrize("kw", [dict(), dict(sigma=None), dict(beta=100.0, sigma=3.0)])
def test_matches_sfnet(grid, kw):
    # SFNet: L2normalize(corr) then find_correspondence.kernel_soft_argmax on the target-major volume
    Ht, Wt = grid
    c = volume(2, 6, 5, Ht, Wt, relu=True)
    expected = sfnet.sfnet_find_correspondence(sfnet.to_target_major(c), Ht, Wt, beta=kw.get("beta", 50.0),
                                               sigma=kw.get("sigma", 5.0))
    assert_close(ops.kernel_soft_argmax(c, **kw), expected, rtol=1e-5, atol=1e-6)


def test_values_by_hand():
    # one source position, targets on a 1x2 grid: X = (-1, 1), Y = (-1,); scores (ln 3, ln 2), no normalisation
    c = torch.tensor([math.log(3.0), math.log(2.0)], dtype=torch.float64).reshape(1, 1, 1, 1, 2)
    out = ops.kernel_soft_argmax(c, beta=1.0, sigma=None, normalize=False)[0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([(-3 + 2) / 5.0, -1.0], dtype=torch.float64))
    # with a Gaussian (sigma = 1) centred on the argmax (x0 = 0): the second score is scaled by exp(-1/2)
    out = ops.kernel_soft_argmax(c, beta=1.0, sigma=1.0, normalize=False)[0, 0, 0]
    w = 2.0 ** math.exp(-0.5)
    torch.testing.assert_close(out, torch.tensor([(-3 + w) / (3 + w), -1.0], dtype=torch.float64))
    # normalisation divides by sqrt(ln3^2 + ln2^2 + 1e-6) before the softmax
    n = math.sqrt(math.log(3.0) ** 2 + math.log(2.0) ** 2 + 1e-6)
    out = ops.kernel_soft_argmax(c, beta=n, sigma=None)[0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([(-3 + 2) / 5.0, -1.0], dtype=torch.float64))


def test_ties_use_lowest_index():
    # two equal maxima far apart on a 1x9 grid: the kernel is centred on the first (x = -1)
    c = torch.zeros(1, 1, 1, 1, 9, dtype=torch.float64)
    c[..., 0] = 1.0
    c[..., 8] = 1.0
    out = ops.kernel_soft_argmax(c, beta=50.0, sigma=1.0)[0, 0, 0]
    assert out[0] < -0.99
    assert_close(out, reference.kernel_soft_argmax(c, beta=50.0, sigma=1.0)[0, 0, 0], rtol=1e-10, atol=1e-12)


def test_peaked_volume_gives_the_argmax_position():
    # a one-hot volume with a large beta: the output is the linspace position of the hot target
    B, Hs, Ws, Ht, Wt = 1, 2, 3, 5, 7
    c = torch.zeros(B, Hs, Ws, Ht, Wt)
    c[0, 1, 2, 3, 5] = 1.0
    out = ops.kernel_soft_argmax(c, beta=100.0)
    torch.testing.assert_close(out[0, 1, 2], torch.tensor([-1 + 2 * 5 / 6, -1 + 2 * 3 / 4]), rtol=0, atol=1e-4)


@pytest.mark.parametrize("beta", [100.0, 400.0])
def test_large_beta_is_stable(beta):
    c = volume(2, 3, 3, 8, 8) * 30.0
    out = ops.kernel_soft_argmax(c, beta=beta, normalize=False)
    assert torch.isfinite(out).all()
    assert_close(out, reference.kernel_soft_argmax(c.double(), beta=beta, normalize=False), rtol=1e-4, atol=1e-5)


def test_non_contiguous():
    c = volume(2, 5, 4, 3, 6).permute(0, 3, 4, 1, 2)  # the target->source volume
    assert not c.is_contiguous()
    assert_close(ops.kernel_soft_argmax(c), reference.kernel_soft_argmax(c.double()))
    c.requires_grad_()
    w = torch.randn(c.shape[:3] + (2,))
    (ops.kernel_soft_argmax(c) * w).sum().backward()
    c2 = c.detach().double().requires_grad_()
    (reference.kernel_soft_argmax(c2) * w.double()).sum().backward()
    assert_close(c.grad, c2.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(0, 2, 2, 2, 2), (2, 0, 3, 3, 3), (1, 2, 0, 0, 0)])
def test_empty(shape):
    c = torch.rand(*shape, requires_grad=True)
    out = ops.kernel_soft_argmax(c)
    assert out.shape == shape[:3] + (2,)
    out.sum().backward()
    assert c.grad.shape == c.shape


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 2, 3, 3, 4), (1, 1, 2, 1, 5)])
def test_gradcheck(kw, shape):
    # scores well separated so that finite differences never move the argmax
    base = torch.randperm(math.prod(shape), generator=torch.Generator().manual_seed(1)).double().reshape(shape)
    c = (base / base.numel()).requires_grad_()
    kw = dict(kw)
    kw.setdefault("beta", 5.0)
    assert torch.autograd.gradcheck(lambda x: ops.kernel_soft_argmax(x, **kw), (c,))


@pytest.mark.parametrize("kw", SETTINGS)
def test_gradient_matches_reference(kw):
    c = volume(2, 3, 2, 4, 5, dtype=torch.float64).requires_grad_()
    w = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    g1 = torch.autograd.grad((ops.kernel_soft_argmax(c, **kw) * w).sum(), c)[0]
    g2 = torch.autograd.grad((reference.kernel_soft_argmax(c, **kw) * w).sum(), c)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12)


def test_gradient_matches_sfnet_float32():
    c = volume(1, 4, 4, 6, 6, relu=True).requires_grad_()
    w = torch.randn(1, 4, 4, 2)
    g1 = torch.autograd.grad((ops.kernel_soft_argmax(c) * w).sum(), c)[0]
    c2 = c.detach().clone().requires_grad_()
    g2 = torch.autograd.grad((sfnet.sfnet_find_correspondence(sfnet.to_target_major(c2), 6, 6) * w).sum(), c2)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-5)


def test_double_backward_raises():
    c = volume(1, 2, 2, 3, 3, dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(ops.kernel_soft_argmax(c).sum(), c, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


@pytest.mark.parametrize("args", [(50.0, 5.0, True), (7.0, 0.0, False)])
def test_opcheck(args):
    c = volume(2, 3, 2, 3, 4).requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.kernel_soft_argmax.default, (c,) + args)


def test_torch_compile_fullgraph():
    def f(a, b):
        return ops.kernel_soft_argmax(ops.corr4d(a, b, relu=True), sigma=2.0).sum(-1)

    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 4, 5)
    assert_close(torch.compile(f, fullgraph=True, backend="aot_eager")(a, b), f(a, b))


def test_torch_compile_inductor_with_grad():
    c = volume(1, 3, 3, 4, 4).requires_grad_()
    f = torch.compile(lambda x: ops.kernel_soft_argmax(x, sigma=None).square().sum(), fullgraph=True)
    (g1,) = torch.autograd.grad(f(c), c)
    (g2,) = torch.autograd.grad(ops.kernel_soft_argmax(c, sigma=None).square().sum(), c)
    assert_close(g1, g2)


@pytest.mark.parametrize("c,kw,match", [
    (torch.rand(2, 3, 3, 3), {}, r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
    (torch.ones(1, 2, 2, 2, 2, dtype=torch.int64), {}, r"`corr` must be a floating tensor"),
    (torch.rand(1, 2, 2, 2, 2), dict(beta=-1.0), r"`beta` must be finite and >= 0, got -1"),
    (torch.rand(1, 2, 2, 2, 2), dict(beta=float("inf")), r"`beta` must be finite"),
    (torch.rand(1, 2, 2, 2, 2), dict(sigma=float("nan")), r"`sigma` must be a number"),
    (torch.rand(1, 2, 2, 0, 3), {}, r"the target grid \(Ht, Wt\) must be non-empty"),
])
def test_bad_input(c, kw, match):
    with pytest.raises(RuntimeError, match=match):
        ops.kernel_soft_argmax(c, **kw)


def test_bad_sigma_type():
    with pytest.raises(TypeError, match="`sigma` must be a number or None"):
        ops.kernel_soft_argmax(torch.rand(1, 1, 1, 2, 2), sigma="5")


def test_backward_bad_grad_shape():
    with pytest.raises(RuntimeError, match=r"`grad` must have shape \[1, 2, 2, 2\]"):
        torch.ops.semcorr._kernel_soft_argmax_backward(torch.rand(1, 2, 2, 3), torch.rand(1, 2, 2, 3, 3), 50.0, 5.0,
                                                       True)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 4), ws=st.integers(1, 4), ht=st.integers(1, 6), wt=st.integers(1, 6),
       perm=st.booleans(), sigma=st.sampled_from([None, 0.7, 5.0]), normalize=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, hs, ws, ht, wt, perm, sigma, normalize, seed):
    c = volume(B, hs, ws, ht, wt, seed=seed)
    if perm:
        c = c.permute(0, 3, 4, 1, 2)
    kw = dict(beta=20.0, sigma=sigma, normalize=normalize)
    assert_close(ops.kernel_soft_argmax(c, **kw), reference.kernel_soft_argmax(c.double(), **kw), rtol=1e-5,
                 atol=2e-6)


# ---- CUDA (skipped without a GPU; the kernels are also tested under the emulator) ----
from conftest import requires_cuda  # noqa: E402


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("beta", [50.0, 100.0])
def test_cuda_matches_cpu_and_is_stable(dtype, beta):
    c = volume(2, 5, 5, 20, 20, relu=True)
    expected = reference.kernel_soft_argmax(c.to(dtype).double(), beta=beta)
    out = ops.kernel_soft_argmax(c.to("cuda", dtype), beta=beta)
    assert out.dtype == dtype and torch.isfinite(out.float()).all()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype in (torch.float32, torch.float64) else dict(rtol=2e-2, atol=1e-2)
    torch.testing.assert_close(out.cpu().double(), expected, **tol)
    w = torch.randn(2, 5, 5, 2)
    cg = c.to("cuda", dtype).requires_grad_()
    (ops.kernel_soft_argmax(cg, beta=beta).float() * w.cuda()).sum().backward()
    assert torch.isfinite(cg.grad.float()).all()
    if dtype == torch.float64:
        c64 = c.double().requires_grad_()
        (ops.kernel_soft_argmax(c64, beta=beta) * w.double()).sum().backward()
        torch.testing.assert_close(cg.grad.cpu(), c64.grad, rtol=1e-9, atol=1e-12)
