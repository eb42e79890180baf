"""Every op on a real GPU against the CPU op, forward and backward (float32 and, per docs/OPS.md#precision,
float16/bfloat16 with float32 accumulation). Skipped on machines without a CUDA device (all of ours); the
same kernels are tested here under the host emulator (tests/test_emu_*.py)."""
import pytest
import torch

from semcorr_ext import ops
from conftest import requires_cuda

pytestmark = [pytest.mark.cuda, requires_cuda]


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _check(fn, inputs, rtol=1e-4, atol=1e-5, dtype=torch.float32):
    """fn(*inputs) on CPU (float32) vs on CUDA (dtype); floating inputs get gradients compared too."""
    cpu = [x.detach().clone().requires_grad_(x.is_floating_point()) if torch.is_tensor(x) else x for x in inputs]
    gpu = [x.detach().to("cuda", dtype if x.is_floating_point() else x.dtype).requires_grad_(x.is_floating_point())
           if torch.is_tensor(x) else x for x in inputs]
    out_c, out_g = fn(*cpu), fn(*gpu)
    out_c = out_c if isinstance(out_c, (tuple, list)) else (out_c,)
    out_g = out_g if isinstance(out_g, (tuple, list)) else (out_g,)
    for c, g in zip(out_c, out_g):
        if c.is_floating_point():
            torch.testing.assert_close(g.float().cpu(), c, rtol=rtol, atol=atol)
        else:
            assert torch.equal(g.cpu(), c)
    diff_c = [o for o in out_c if o.is_floating_point() and o.requires_grad]
    if not diff_c:
        return
    w = [torch.randn(o.shape, generator=_g(7)) for o in diff_c]
    sum(((o * wi).sum() for o, wi in zip(diff_c, w))).backward()
    sum(((o.float() * wi.cuda()).sum() for o, wi in zip([o for o in out_g if o.is_floating_point() and o.requires_grad], w))).backward()
    for c, g in zip(cpu, gpu):
        if torch.is_tensor(c) and c.grad is not None:
            torch.testing.assert_close(g.grad.float().cpu(), c.grad, rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("dtype,rtol,atol", [(torch.float32, 1e-4, 1e-5), (torch.float16, 2e-2, 2e-2),
                                             (torch.bfloat16, 5e-2, 5e-2)])
def test_correlation(dtype, rtol, atol):
    src, tgt = torch.randn(2, 40, 9, 7, generator=_g()), torch.randn(2, 40, 6, 11, generator=_g(1))
    _check(lambda a, b: ops.corr4d(a, b, relu=True, power=3.0), [src, tgt], rtol, atol, dtype)
    _check(lambda c: ops.mutual_matching(c), [torch.rand(2, 5, 4, 6, 3, generator=_g())], rtol, atol, dtype)


def test_corr4d_topk():
    src, tgt = torch.randn(2, 32, 7, 9, generator=_g()), torch.randn(2, 32, 8, 10, generator=_g(1))
    _check(lambda a, b: ops.corr4d_topk(a, b, 5), [src, tgt])


def test_consensus():
    x, w, b = torch.randn(2, 3, 6, 5, 7, 4, generator=_g()), torch.randn(4, 3, 3, 3, 5, 3, generator=_g(1)), torch.randn(4)
    _check(lambda x, w, b: ops.conv4d(x, w, b), [x, w, b])
    _check(lambda x: ops.max_pool4d(x, 2), [torch.randn(2, 3, 6, 4, 4, 6, generator=_g())])


def test_sparse_conv4d():
    coords = torch.stack(torch.meshgrid(*[torch.arange(n) for n in (2, 4, 3, 4, 3)], indexing="ij"), -1).reshape(-1, 5)
    coords = coords[torch.randperm(len(coords), generator=_g())[: len(coords) // 2]]
    feats, w = torch.randn(len(coords), 4, generator=_g()), torch.randn(3, 4, 3, 3, 3, 3, generator=_g(1))
    km_cpu = ops.kernel_map4d(coords, 3)
    km_gpu = ops.kernel_map4d(coords.cuda(), 3)
    for name in ("in_rows", "out_rows", "offsets_ptr"):
        assert torch.equal(getattr(km_gpu, name).cpu(), getattr(km_cpu, name))
    _check(lambda f, w: ops.sparse_conv4d(f, None, w, kernel_map=km_gpu if f.is_cuda else km_cpu), [feats, w])


def test_patchmatch():
    B, H, W = 2, 6, 7
    matches = torch.stack([torch.randint(0, 5, (B, H, W, 1), generator=_g()),
                           torch.randint(0, 6, (B, H, W, 1), generator=_g(1))], -1)
    offsets = ops.patchmatch.pmnc_offsets()
    kw = dict(target_size=(5, 6), random_samples=3, radius=2, seed=11, iteration=2)
    cand_c, valid_c = ops.patchmatch_propagate(matches, offsets, **kw)
    cand_g, valid_g = ops.patchmatch_propagate(matches.cuda(), offsets.cuda(), **kw)
    assert torch.equal(cand_g.cpu(), cand_c) and torch.equal(valid_g.cpu(), valid_c)
    corr = torch.randn(B, H, W, 5, 6, generator=_g())
    _check(lambda c, cand: ops.gather_windows4d(c, cand, 3), [corr, cand_c])
    pts = torch.stack([torch.randint(-1, B + 1, (50,), generator=_g())] +
                      [torch.randint(-3, n + 3, (50,), generator=_g(k)) for k, n in enumerate((H, W, 5, 6))], 1)
    _check(lambda c, p: ops.gather_windows4d_points(c, p, 5), [corr, pts])
    weight, bias = torch.randn(6, 5, 5, 5, 5, generator=_g(3)), torch.randn(6, generator=_g(4))
    _check(lambda c, p, w, b: ops.gather_windows4d_linear(c, p, w, b), [corr, pts, weight, bias], rtol=1e-3, atol=1e-4)
    scores = torch.randn(valid_c.shape, generator=_g(2))
    _check(lambda s, cand, v: ops.patchmatch_select(cand, s, v, 2), [scores, cand_c, valid_c])


def test_hough():
    Ns, Nt = 37, 29
    app = torch.rand(2, Ns, Nt, generator=_g())
    sc, tc = torch.rand(2, Ns, 2, generator=_g(1)) * 60, torch.rand(2, Nt, 2, generator=_g(2)) * 50
    _check(lambda a: ops.hough_match(a, sc.to(a.device), tc.to(a.device), (60, 60), (50, 50), ncells=512), [app])
    bins = torch.randint(-1, 12, (2, Ns, Nt), generator=_g(3))
    _check(lambda a: ops.hough_vote(a, bins.to(a.device), (3, 4)), [app])


@pytest.mark.parametrize("sigma", [5.0, None])
def test_kernel_soft_argmax(sigma):
    _check(lambda c: ops.kernel_soft_argmax(c, sigma=sigma), [torch.randn(2, 4, 5, 9, 8, generator=_g())])
