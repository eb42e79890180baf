"""kernel_soft_argmax's own cases: SFNet's published algorithm, ties, stability, fuzzing, CUDA.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
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


def test_gradient_matches_sfnet_float32():
    c = volume(1, 4, 4, 6, 6, relu=True).requires_grad_()
    w = torch.randn(1, 4, 4, 2)
    g1 = torch.autograd.grad((ops.kernel_soft_argmax(c) * w).sum(), c)[0]
    c2 = c.detach().clone().requires_grad_()
    g2 = torch.autograd.grad((sfnet.sfnet_find_correspondence(sfnet.to_target_major(c2), 6, 6) * w).sum(), c2)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-5)


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
