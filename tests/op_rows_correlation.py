"""Op-contract rows (tests/op_contract.py) of the correlation ops: corr4d, mutual_matching."""
import torch
from op_contract import F32, F64, Case, OpRow, bad, f64, gen, grad_, kw_id, out_shapes, pair, rnd, shape_id

from semcorr_ext import ops, reference

S = torch.ops.semcorr


# ---- corr4d -----------------------------------------------------------------------------------------------------
CORR_FLAGS = [dict(), dict(normalize=False), dict(relu=True), dict(relu=True, power=3.0), dict(relu=True, power=0.5),
              dict(normalize=False, relu=True, power=2.0), dict(eps=0.0)]
CORR_SHAPES = [((2, 8, 5, 7), (2, 8, 6, 3)), ((1, 1, 1, 1), (1, 1, 1, 1)), ((3, 33, 4, 1), (3, 33, 1, 9))]


def corr4d_raw(O, s, t, kw):
    """corr4d through the registered op (or the emulator's binding), positional arguments."""
    return O.corr4d(s, t, kw.get("normalize", True), kw.get("relu", False), kw.get("power", 1.0), kw.get("eps", 1e-6))


def corr4d_fwd_bwd(O, s, t, kw):
    out = corr4d_raw(O, s, t, kw)
    args = (kw.get("normalize", True), kw.get("relu", False), kw.get("power", 1.0), kw.get("eps", 1e-6))
    return (out, *O.corr4d_backward(rnd(*out.shape, seed=2), s, t, out, *args))


def _corr_bad(src_shape, tgt_shape, kw, match, dtypes=(F32, F32)):
    return bad(f"{shape_id(src_shape, tgt_shape)}-{kw_id(kw)}", lambda: (rnd(*src_shape, dtype=dtypes[0]),
                                                                         rnd(*tgt_shape, dtype=dtypes[1])),
               lambda s, t: ops.corr4d(s, t, **kw), match)


_INT, _BF16 = torch.int32, torch.bfloat16
CORR4D = OpRow(
    "corr4d",
    reference=[Case(f"{kw_id(kw)}-{shape_id(*s)}", lambda d, s=s: pair(*s, dtype=d),
                    lambda a, b, kw=kw: ops.corr4d(a, b, **kw), lambda a, b, kw=kw: reference.corr4d(*f64(a, b), **kw))
               for kw in CORR_FLAGS for s in CORR_SHAPES],
    grad_reference=[Case("relu-power3", lambda: grad_(*pair((2, 6, 4, 3), (2, 6, 3, 5), F64)),
                         lambda a, b: ops.corr4d(a, b, relu=True, power=3.0),
                         lambda a, b: reference.corr4d(a, b, relu=True, power=3.0), tol=(1e-10, 1e-12))],
    gradcheck=[Case(kw_id(kw), lambda: grad_(*pair((2, 5, 3, 2), (2, 5, 2, 3), F64)),
                    lambda a, b, kw=kw: ops.corr4d(a, b, **kw)) for kw in CORR_FLAGS],
    opcheck=[Case(kw_id(kw), lambda kw=kw: (*grad_(*pair((2, 4, 3, 3), (2, 4, 2, 3))), kw.get("normalize", True),
                                            kw.get("relu", False), kw.get("power", 1.0), 1e-6), S.corr4d.default)
             for kw in (dict(), dict(relu=True, power=3.0))] + [
        Case("bf16-out_dtype=float32", lambda: (*grad_(*pair((2, 4, 3, 3), (2, 4, 2, 3), _BF16)), True, False, 1.0,
                                                 1e-6, F32), S.corr4d.default)],
    compile=[Case("relu-power2-sum", lambda: pair((2, 4, 3, 3), (2, 4, 5, 2)),
                  lambda a, b: ops.corr4d(a, b, relu=True, power=2.0).sum(dim=(3, 4)), opts=dict(backend="aot_eager")),
             Case("bf16-out_dtype=float32", lambda: grad_(*pair((2, 4, 3, 3), (2, 4, 5, 2), _BF16)),
                  lambda a, b: ops.corr4d(a, b, out_dtype=F32).sum(dim=(3, 4)), opts=dict(backend="aot_eager"))],
    empty=[Case(shape_id(*s), lambda s=s: grad_(*pair(*s)), ops.corr4d, ref=reference.corr4d,  # zeros when C == 0
                check=out_shapes(lambda a, b: (a.shape[0], *a.shape[2:], *b.shape[2:])))
           for s in [((0, 4, 3, 3), (0, 4, 2, 2)), ((2, 4, 0, 3), (2, 4, 2, 2)), ((2, 4, 3, 3), (2, 4, 2, 0)),
                     ((2, 0, 3, 3), (2, 0, 2, 2))]],
    bad_input=[
        _corr_bad((2, 4, 3), (2, 4, 3, 3), {}, r"`src` must be a 4-D tensor \(B, C, Hs, Ws\), got shape \[2, 4, 3\]"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3, 1), {}, r"`tgt` must be a 4-D tensor"),
        _corr_bad((2, 4, 3, 3), (2, 5, 3, 3), {}, r"same number of channels.*\[2, 4, 3, 3\] and \[2, 5, 3, 3\]"),
        _corr_bad((2, 4, 3, 3), (3, 4, 3, 3), {}, r"same batch size"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3), {}, r"`src` and `tgt` must have the same dtype", (F32, F64)),
        bad("int", lambda: (torch.ones(2, 4, 3, 3, dtype=_INT),) * 2, ops.corr4d, r"`src` must be a floating"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3), dict(power=2.0), r"`power` != 1 requires `relu=True`"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3), dict(eps=-1.0), r"`eps` must be >= 0"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3), dict(out_dtype=F64), r"`out_dtype` must be None, the input dtype"),
        _corr_bad((2, 4, 3, 3), (2, 4, 3, 3), dict(out_dtype=F32), r"`out_dtype` must be None, the input dtype",
                  (F64, F64)),
    ],
    emu=[Case(f"fwd-bwd-{kw_id(kw)}", lambda: pair((1, 3, 2, 3), (1, 3, 3, 2), F64),
              lambda O, s, t, kw=kw: corr4d_fwd_bwd(O, s, t, kw), tol=(1e-10, 1e-12))
         for kw in (dict(), dict(relu=True, power=3.0))] + [
        Case("float32-single-cell", lambda: pair((1, 3, 1, 1), (1, 3, 1, 1)), lambda O, s, t: corr4d_raw(O, s, t, {})),
        Case("float32-relu-power2", lambda: pair((3, 40, 5, 3), (3, 40, 2, 4)),
             lambda O, s, t: corr4d_raw(O, s, t, dict(relu=True, power=2.0)))],
    emu_empty=[Case("batch0", lambda: pair((0, 4, 3, 3), (0, 4, 2, 2)), lambda O, s, t: corr4d_raw(O, s, t, {}),
                    check=out_shapes(lambda a, b: (0, 3, 3, 2, 2)))],
    emu_bad_input=[bad("power-without-relu", lambda: pair((1, 2, 2, 2), (1, 2, 2, 2)),
                       lambda O, s, t: O.corr4d(s, t, True, False, 2.0, 1e-6), "`power` != 1 requires `relu=True`")],
)


# ---- mutual_matching --------------------------------------------------------------------------------------------
def volume(*shape, dtype=F32, seed=0):
    """Non-negative, like the ReLU'd / softmaxed volumes NC-Net filters; continuous so maxima are unique."""
    return torch.rand(*shape, generator=gen(seed), dtype=dtype)


def mm_fwd_bwd(O, c):
    return O.mutual_matching(c, 1e-5), O.mutual_matching_backward(rnd(*c.shape, seed=3), c, 1e-5)


MUTUAL_MATCHING = OpRow(
    "mutual_matching",
    reference=[Case(f"{shape_id(s)}-eps{eps}", lambda d, s=s: (volume(*s, dtype=d),),
                    lambda c, eps=eps: ops.mutual_matching(c, eps=eps),
                    lambda c, eps=eps: reference.mutual_matching(c.double(), eps=eps))
               for s in [(2, 3, 4, 5, 2), (1, 1, 1, 1, 1), (2, 1, 5, 1, 3, 3), (1, 7, 1, 1, 6)] for eps in (1e-5, 0.1)],
    gradcheck=[Case(shape_id(s), lambda s=s: grad_(volume(*s, dtype=F64)), ops.mutual_matching)
               for s in [(2, 2, 3, 3, 2), (1, 1, 3, 2, 2, 2)]],
    opcheck=[Case("default", lambda: (*grad_(volume(2, 3, 2, 3, 2)), 1e-5), S.mutual_matching.default)],
    compile=[Case("after-corr4d", lambda: pair((2, 4, 3, 3), (2, 4, 2, 3)),
                  lambda a, b: ops.mutual_matching(ops.corr4d(a, b, relu=True)).amax(dim=(3, 4)))],
    empty=[Case(shape_id(s), lambda s=s: grad_(volume(*s)), ops.mutual_matching, check=out_shapes(lambda c: c.shape))
           for s in [(0, 2, 2, 2, 2), (2, 0, 3, 3, 3), (2, 3, 3, 0, 1)]],
    bad_input=[
        bad("4d", lambda: (volume(2, 3, 3, 3),), ops.mutual_matching,
            r"`corr` must be \(B, Hs, Ws, Ht, Wt\) or \(B, 1, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
        bad("6d-2-channels", lambda: (volume(2, 2, 3, 3, 3, 3),), ops.mutual_matching, r"`corr` must be"),
        bad("int", lambda: (torch.ones(1, 2, 2, 2, 2, dtype=torch.int64),), ops.mutual_matching,
            r"`corr` must be a floating tensor")],
    emu=[Case("fwd-bwd", lambda: (volume(1, 2, 3, 2, 3, dtype=F64),), mm_fwd_bwd, tol=(1e-10, 1e-12))],
    emu_empty=[Case("batch0", lambda: (volume(0, 2, 2, 2, 2, dtype=F64),), lambda O, c: O.mutual_matching(c, 1e-5),
                    check=out_shapes(lambda c: c.shape))],
    emu_bad_input=[bad("4d", lambda: (volume(2, 3, 3, 3, dtype=F64),), lambda O, c: O.mutual_matching(c, 1e-5),
                       r"`corr` must be")],
)

ROWS = [CORR4D, MUTUAL_MATCHING]
