"""The CPU bfloat16 paths (docs/OPS.md#precision) against the float64 reference, on realistic inputs.

Each reduced-precision CPU op (the GEMM-shaped ones and the window copies) is run in bfloat16, forward and
backward, and compared with ``semcorr_ext.reference`` in float64 on the same (bfloat16-rounded) inputs: the
error measured is the op's own, not the rounding of its inputs. The error is normwise, max |out - ref| /
max |ref| per output tensor (element-wise relative error is meaningless where the reference crosses zero), and
must stay under the bound the contract states (BOUNDS, quoted in docs/OPS.md). Correlations must also keep
their argmax: >= 99% of the source positions pick the float64 reference's best target.

Inputs: features like a CNN's (non-negative, spatially smooth, C = 256..1024 on 25x25 grids), a target that is a
shifted and noisy copy of the source (so every source position has a true match), NC-Net-sized consensus
layers, PMNC-sized windows.
"""
import pytest
import torch
import torch.nn.functional as F

from semcorr_ext import ops, reference

BF16 = torch.bfloat16
# Normwise relative error bounds of the CPU bfloat16 path, forward and backward (docs/OPS.md#precision). bfloat16
# keeps 8 significant bits (unit roundoff u = 2^-9 ~ 2e-3): one rounding of the output costs up to u, the GEMM's
# rounding of its float32 sums another u, relu(.)^3 triples both, and backward passes round their operands too.
BOUNDS = {"corr4d": 1.5e-2, "corr4d relu^3": 3e-2, "corr4d_topk": 1.5e-2, "conv4d": 1e-2, "sparse_conv4d": 1e-2,
          "gather_windows4d_linear": 1e-2}
ARGMAX_AGREEMENT = 0.99


def features(C, H, W, seed):
    """A CNN-like feature map (1, C, H, W): a smooth field (noise at 1/4 resolution, upsampled) plus fine detail,
    rectified."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(1, C, H // 4 + 2, W // 4 + 2, generator=g)
    f = F.interpolate(low, size=(H, W), mode="bicubic", align_corners=False)
    return (f + 0.5 * torch.randn(1, C, H, W, generator=g)).relu()


def pair(C, H=25, W=25, seed=0):
    """(src, tgt): tgt is src shifted by (3, -2) cells (wrapping) plus as much noise again (rectified), so each
    position has a true match, not always by a wide margin."""
    src = features(C, H, W, seed)
    g = torch.Generator().manual_seed(seed + 1)
    tgt = (src.roll((3, -2), dims=(2, 3)) + torch.randn(1, C, H, W, generator=g)).relu()
    return src, tgt


def rel_err(out, ref):
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


def as64(*ts):
    """The bfloat16 inputs in float64, requiring grad: the reference sees exactly what the op saw."""
    return [t.detach().double().requires_grad_() for t in ts]


def check_forward_backward(name, op, ref, inputs, grad_seed=0):
    """op on bfloat16 inputs vs ref on the same values in float64: output dtype, forward and every input
    gradient within BOUNDS[name]. Returns (out, ref_out)."""
    xs = [t.to(BF16).requires_grad_() for t in inputs]
    out = op(*xs)
    assert out.dtype == BF16
    xr = as64(*xs)
    rout = ref(*xr)
    assert rel_err(out, rout) < BOUNDS[name], (name, "forward", rel_err(out, rout))
    w = torch.randn(rout.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=torch.float64)
    grads = torch.autograd.grad((out.double() * w).sum(), xs)
    rgrads = torch.autograd.grad((rout * w).sum(), xr)
    for i, (gr, rg) in enumerate(zip(grads, rgrads)):
        assert gr.dtype == BF16
        assert rel_err(gr, rg) < BOUNDS[name], (name, "grad of input %d" % i, rel_err(gr, rg))
    return out, rout


def argmax_agreement(out, ref):
    """The fraction of source positions whose best target (lowest index among equal maxima) is the reference's."""
    B, Hs, Ws = out.shape[:3]
    a = out.float().reshape(B * Hs * Ws, -1).argmax(1)
    b = ref.reshape(B * Hs * Ws, -1).argmax(1)
    return (a == b).double().mean().item()


def argmax_among_maxima(out, ref):
    """The fraction of source positions where the reference's best target is one of the maxima of ``out``: a
    bfloat16 volume holds 8 significant bits, so near-equal scores round to ties that no kernel can order."""
    o = out.float().flatten(3)
    best = ref.flatten(3).argmax(3, keepdim=True)
    return (o.gather(3, best) == o.max(3, keepdim=True).values).double().mean().item()


@pytest.fixture(scope="module")
def daisy_pairs():
    """DAISY features (C = 200, 25x25) of three synthetic benchmark pairs: real descriptors of warped photos,
    smooth in space, so neighbouring targets score within a fraction of a percent of each other."""
    from semcorr.backbones import build_backbone
    from semcorr.data.datasets import build_dataset

    ds = build_dataset("synthetic", None, split="test", size=200)
    bb = build_backbone("daisy", stride=8)
    return [(bb(ds[i]["src_img"][None]), bb(ds[i]["tgt_img"][None])) for i in (0, 4, 9)]


@pytest.mark.parametrize("C", [256, 1024])
@pytest.mark.parametrize("setting", ["ncnet", "hpf", "sfnet"])
def test_corr4d_bf16(C, setting):
    kw = {"ncnet": {}, "hpf": dict(relu=True, power=3.0, eps=0.0), "sfnet": dict(relu=True)}[setting]
    src, tgt = pair(C, seed=C)
    name = "corr4d relu^3" if setting == "hpf" else "corr4d"
    out, rout = check_forward_backward(name, lambda s, t: ops.corr4d(s, t, **kw),
                                       lambda s, t: reference.corr4d(s, t, **kw), [src, tgt])
    assert argmax_agreement(out, rout.detach()) >= ARGMAX_AGREEMENT
    # and against the float32 inputs before rounding: the argmax a user of autocast gets
    full = reference.corr4d(src.double(), tgt.double(), **kw)
    assert argmax_agreement(out, full) >= ARGMAX_AGREEMENT


# The argmax of a bfloat16 corr4d volume on DAISY features (measured on these pairs): the plain argmax agrees for
# 89-96% of the positions only, because the rounded output ties near-equal scores (neighbouring targets of smooth
# descriptors score within 0.5% of each other, bfloat16's resolution). With cosine scores the reference's best
# target is always one of the tied maxima (100%); with HPF's relu(cos)^3 the GEMM's rounding of the raw dot product,
# tripled by the cube, leaves it there for 98.6% only. corr4d_topk ranks in float32 (see its kernel) and its top-1
# agrees for >= 99.6% with either score (relu(.)^3 is monotone): the readout for argmax matching in bfloat16.
AMONG_MAXIMA = {"ncnet": 0.99, "hpf": 0.98}


@pytest.mark.parametrize("setting", ["ncnet", "hpf"])
def test_corr4d_bf16_argmax_on_daisy_features(setting, daisy_pairs):
    kw = {"ncnet": {}, "hpf": dict(relu=True, power=3.0, eps=0.0)}[setting]
    for fs, ft in daisy_pairs:
        out = ops.corr4d(fs.to(BF16), ft.to(BF16), **kw)
        full = reference.corr4d(fs.double(), ft.double(), **kw)
        assert rel_err(out, reference.corr4d(fs.to(BF16).double(), ft.to(BF16).double(), **kw)) < \
            BOUNDS["corr4d relu^3" if kw else "corr4d"]
        assert argmax_among_maxima(out, full) >= AMONG_MAXIMA[setting]
        _, idx = ops.corr4d_topk(fs.to(BF16), ft.to(BF16), 1)
        assert (idx[..., 0] == full.flatten(3).argmax(3)).double().mean().item() >= ARGMAX_AGREEMENT


@pytest.mark.parametrize("normalize", [True, False])
def test_corr4d_topk_bf16(normalize):
    src, tgt = pair(512, seed=5)
    k = 10
    values, idx = ops.corr4d_topk(src.to(BF16), tgt.to(BF16), k, normalize=normalize)
    rvalues, ridx = reference.corr4d_topk(src.to(BF16).double(), tgt.to(BF16).double(), k, normalize=normalize)
    assert values.dtype == BF16 and idx.dtype == torch.int64
    assert rel_err(values, rvalues) < BOUNDS["corr4d_topk"]  # the k largest values, whichever targets hold them
    assert (idx[..., 0] == ridx[..., 0]).double().mean().item() >= ARGMAX_AGREEMENT

    # Gradients for the op's own selection (near-ties at rank k may pick other targets than float64 does, and
    # the gradient then goes elsewhere): the reference is the dense float64 volume read at the op's indices.
    def dense_at_idx(s, t):
        return reference.corr4d(s, t, normalize=normalize).flatten(3).gather(3, idx)

    check_forward_backward("corr4d_topk", lambda s, t: ops.corr4d_topk(s, t, k, normalize=normalize)[0],
                           dense_at_idx, [src, tgt])


# NC-Net's consensus layers (1 -> 16 -> 16 -> 1, kernel 3 or 5) on correlation-like volumes; 16 -> 1 runs the
# scatter plan (float32 sums over the taps), the others the gather plan.
@pytest.mark.parametrize("cin,cout,k,size", [(1, 16, 5, 10), (16, 16, 3, 12), (16, 1, 3, 15)])
def test_conv4d_bf16(cin, cout, k, size):
    g = torch.Generator().manual_seed(cin * 100 + cout)
    x = torch.rand(2, cin, size, size, size, size, generator=g) ** 3  # sparse-ish, non-negative like corr^3
    w = torch.randn(cout, cin, k, k, k, k, generator=g) / (cin * k**4) ** 0.5
    b = 0.1 * torch.randn(cout, generator=g)
    check_forward_backward("conv4d", ops.conv4d, reference.conv4d, [x, w, b])


# 16 channels (Sparse NC-Net) runs in float32 inside (thin layers, see the kernel); 48 runs the bfloat16 GEMMs
@pytest.mark.parametrize("channels", [16, 48])
def test_sparse_conv4d_bf16(channels):
    g = torch.Generator().manual_seed(3)
    cells = torch.randperm(12**4, generator=g)[:2000]
    coords = torch.stack([torch.zeros_like(cells)] + [(cells // 12**d) % 12 for d in (3, 2, 1, 0)], 1)
    feats = torch.rand(2000, channels, generator=g)
    w = torch.randn(channels, channels, 3, 3, 3, 3, generator=g) / (channels * 81) ** 0.5
    b = 0.1 * torch.randn(channels, generator=g)
    kmap = ops.kernel_map4d(coords, 3)
    check_forward_backward("sparse_conv4d", lambda f, w_, b_: ops.sparse_conv4d(f, None, w_, b_, kernel_map=kmap),
                           lambda f, w_, b_: reference.sparse_conv4d(f, coords, w_, b_), [feats, w, b])


def test_gather_windows4d_linear_bf16():
    src, tgt = pair(256, 16, 16, seed=9)
    corr = ops.corr4d(src, tgt, relu=True).detach()
    g = torch.Generator().manual_seed(4)
    points = torch.stack([torch.zeros(2000, dtype=torch.long)] + [torch.randint(0, 16, (2000,), generator=g)
                                                                  for _ in range(4)], 1)
    w = torch.randn(16, 5, 5, 5, 5, generator=g) / 25.0
    b = 0.1 * torch.randn(16, generator=g)
    check_forward_backward("gather_windows4d_linear",
                           lambda c, w_, b_: ops.gather_windows4d_linear(c, points, w_, b_),
                           lambda c, w_, b_: reference.gather_windows4d_linear(c, points, w_, b_), [corr, w, b])


def test_window_copies_are_exact_in_bf16():
    g = torch.Generator().manual_seed(1)
    corr = torch.rand(1, 9, 9, 9, 9, generator=g).to(BF16)
    cand = torch.randint(-1, 10, (1, 9, 9, 4, 2), generator=g)
    points = torch.randint(-1, 10, (50, 5), generator=g)
    points[:, 0] = 0
    for cut in (lambda c: ops.gather_windows4d(c, cand, 3), lambda c: ops.gather_windows4d_points(c, points, 3)):
        c16, c64 = corr.clone().requires_grad_(), corr.double().requires_grad_()
        out, ref = cut(c16), cut(c64)
        assert out.dtype == BF16 and torch.equal(out.double(), ref)
        # small integer weights: every gradient sum (<= 81 terms of |w| <= 3) is an integer bfloat16 holds exactly
        w = torch.randint(-3, 4, out.shape, generator=g).double()
        (gr,) = torch.autograd.grad((out * w.to(BF16)).sum(), c16)
        (rg,) = torch.autograd.grad((ref * w).sum(), c64)
        assert gr.dtype == BF16 and torch.equal(gr.double(), rg)


@pytest.mark.parametrize("name,call", [
    ("corr4d", lambda t: ops.corr4d(t, t)),
    ("conv4d", lambda t: ops.conv4d(t.view(1, 1, 2, 2, 2, 2), t.view(1, 1, 2, 2, 2, 2))),
    ("sparse_conv4d", lambda t: ops.sparse_conv4d(t.view(1, 16), torch.zeros(1, 5, dtype=torch.long),
                                                  t.view(1, 16, 1, 1, 1, 1).expand(2, 16, 1, 1, 1, 1))),
])
def test_float16_is_refused_on_cpu_naming_the_argument(name, call):
    with pytest.raises(RuntimeError, match=r"^semcorr::%s: `\w+` must be a floating tensor "
                                           r"\(float32/float64/bfloat16\), got Half" % name):
        call(torch.rand(16).half().view(1, 1, 4, 4))


def test_mixed_bf16_and_float32_inputs_are_refused():
    with pytest.raises(RuntimeError, match="`src` and `tgt` must have the same dtype"):
        ops.corr4d(torch.rand(1, 4, 3, 3).to(BF16), torch.rand(1, 4, 3, 3))
