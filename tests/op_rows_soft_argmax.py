"""Op-contract rows (tests/op_contract.py) of the soft-argmax op: kernel_soft_argmax."""
import math

import torch
from op_contract import F32, Case, OpRow, bad, gen, grad_, kw_id, out_shapes, pair, rnd, shape_id

from semcorr_ext import ops, reference

S = torch.ops.semcorr
I64 = torch.int64


# ---- kernel_soft_argmax -----------------------------------------------------------------------------------------
SETTINGS = [dict(), dict(sigma=None), dict(normalize=False, beta=3.0), dict(sigma=1.5, beta=10.0),
            dict(sigma=None, normalize=False, beta=2.0)]


def ksa_raw_args(kw):
    sigma = kw.get("sigma", 5.0)
    return kw.get("beta", 50.0), 0.0 if sigma is None else sigma, kw.get("normalize", True)


def ksa_fwd_bwd(O, c):
    out = O.kernel_soft_argmax(c, 50.0, 5.0, True)
    return out, O.kernel_soft_argmax_backward(rnd(*out.shape, seed=1), c, 50.0, 5.0, True)


def separated(shape):
    """Scores well separated so that finite differences never move the argmax."""
    base = torch.randperm(math.prod(shape), generator=gen(1)).double().reshape(shape)
    return base / base.numel()


def _ksa_bad(id, c, match, error=RuntimeError, **kw):
    return bad(id, lambda: (c,), lambda x: ops.kernel_soft_argmax(x, **kw), match, error)


def ksa(kw):
    return lambda c: ops.kernel_soft_argmax(c, **kw)


KERNEL_SOFT_ARGMAX = OpRow(
    "kernel_soft_argmax",
    reference=[Case(f"{kw_id(kw)}-{shape_id(s)}", lambda d, s=s: (rnd(*s, dtype=d),), ksa(kw),
                    lambda c, kw=kw: reference.kernel_soft_argmax(c.double(), **kw))
               for kw in SETTINGS for s in [(2, 3, 4, 5, 6), (1, 1, 1, 1, 1), (1, 2, 2, 1, 7), (2, 1, 3, 6, 1),
                                            (1, 3, 3, 9, 11)]],
    grad_reference=[Case(kw_id(kw), lambda: grad_(rnd(2, 3, 2, 4, 5)), ksa(kw),
                         lambda c, kw=kw: reference.kernel_soft_argmax(c, **kw), tol=(1e-9, 1e-12)) for kw in SETTINGS],
    gradcheck=[Case(f"{kw_id(kw)}-{shape_id(s)}", lambda s=s: grad_(separated(s)), ksa(dict(dict(beta=5.0), **kw)))
               for kw in SETTINGS for s in [(2, 2, 3, 3, 4), (1, 1, 2, 1, 5)]],
    opcheck=[Case(f"beta{a[0]}", lambda a=a: (grad_(rnd(2, 3, 2, 3, 4, dtype=F32))[0], *a), S.kernel_soft_argmax.default)
             for a in [(50.0, 5.0, True), (7.0, 0.0, False)]],
    compile=[Case("after-corr4d", lambda: pair((2, 4, 3, 3), (2, 4, 4, 5)),
                  lambda a, b: ops.kernel_soft_argmax(ops.corr4d(a, b, relu=True), sigma=2.0).sum(-1),
                  opts=dict(backend="aot_eager")),
             Case("inductor-backward", lambda: grad_(rnd(1, 3, 3, 4, 4, dtype=F32)),
                  lambda x: ops.kernel_soft_argmax(x, sigma=None).square().sum())],
    empty=[Case(shape_id(s), lambda s=s: grad_(torch.rand(*s)), ksa({}), check=out_shapes(lambda c: (*c.shape[:3], 2)))
           for s in [(0, 2, 2, 2, 2), (2, 0, 3, 3, 3), (1, 2, 0, 0, 0)]],
    bad_input=[
        _ksa_bad("4d", torch.rand(2, 3, 3, 3), r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
        _ksa_bad("int", torch.ones(1, 2, 2, 2, 2, dtype=I64), r"`corr` must be a floating tensor"),
        _ksa_bad("beta-negative", torch.rand(1, 2, 2, 2, 2), r"`beta` must be finite and >= 0, got -1", beta=-1.0),
        _ksa_bad("beta-inf", torch.rand(1, 2, 2, 2, 2), r"`beta` must be finite", beta=float("inf")),
        _ksa_bad("sigma-nan", torch.rand(1, 2, 2, 2, 2), r"`sigma` must be a number", sigma=float("nan")),
        _ksa_bad("empty-target", torch.rand(1, 2, 2, 0, 3), r"the target grid \(Ht, Wt\) of `corr` must be non-empty"),
        _ksa_bad("sigma-str", torch.rand(1, 1, 1, 2, 2), "`sigma` must be a number or None", TypeError, sigma="5"),
        bad("backward-grad-shape", lambda: (torch.rand(1, 2, 2, 3), torch.rand(1, 2, 2, 3, 3)),
            lambda g, c: S._kernel_soft_argmax_backward(g, c, 50.0, 5.0, True), r"`grad` must have shape \[1, 2, 2, 2\]")],
    emu=[Case("fwd-bwd", lambda: (rnd(2, 3, 3, 5, 7),), ksa_fwd_bwd, tol=(1e-10, 1e-12))],
    emu_empty=[Case("batch0", lambda: (rnd(0, 2, 2, 3, 3),), lambda O, c: O.kernel_soft_argmax(c, 50.0, 5.0, True),
                    check=out_shapes(lambda c: (0, 2, 2, 2)))],
    emu_bad_input=[
        bad("beta-negative", lambda: (rnd(1, 2, 2, 3, 3),), lambda O, c: O.kernel_soft_argmax(c, -2.0, 5.0, True),
            "`beta` must be finite and >= 0"),
        bad("backward-grad-shape", lambda: (rnd(1, 2, 2, 3), rnd(1, 2, 2, 3, 3)),
            lambda O, g, c: O.kernel_soft_argmax_backward(g, c, 50.0, 5.0, True), r"`grad` must have shape")],
)

ROWS = [KERNEL_SOFT_ARGMAX]
