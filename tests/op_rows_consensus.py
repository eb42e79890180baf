"""Op-contract rows (tests/op_contract.py) of the dense neighbourhood-consensus ops: conv4d, max_pool4d."""

import torch
from op_contract import F32, F64, Case, OpRow, bad, f64, grad_, out_shapes, rnd, shape_id

from semcorr_ext import ops, reference

S = torch.ops.semcorr
BF16 = torch.bfloat16


def conv_inputs(xs, ws, dtype=F64, bias=True):
    x, w = rnd(*xs, dtype=dtype), rnd(*ws, dtype=dtype, seed=1)
    return (x, w, rnd(ws[0], dtype=dtype, seed=2)) if bias else (x, w)


# ---- conv4d -----------------------------------------------------------------------------------------------------
CONV_CASES = [  # (x shape, weight shape, padding)
    ((2, 3, 5, 6, 4, 5), (4, 3, 3, 3, 3, 3), None),
    ((1, 16, 6, 5, 6, 5), (1, 16, 5, 5, 5, 5), None),      # thin output (NC-Net's last layer)
    ((1, 1, 6, 5, 6, 5), (16, 1, 5, 5, 5, 5), None),       # thin input (NC-Net's first layer)
    ((2, 2, 4, 5, 6, 7), (3, 2, 3, 3, 5, 5), None),        # ANC-Net's non-isotropic 3x3x5x5
    ((1, 2, 5, 4, 6, 3), (2, 2, 1, 3, 1, 3), (0, 1, 0, 1)),
    ((1, 3, 4, 4, 5, 5), (2, 3, 3, 3, 3, 3), (2, 0, 1, 3)),  # padding > k // 2, and = 0
    ((1, 2, 7, 3, 3, 4), (2, 2, 5, 3, 3, 3), (0, 1, 1, 1)),  # "valid" along dim 1
    ((1, 1, 1, 1, 1, 1), (1, 1, 1, 1, 1, 1), None),
    ((1, 1, 1, 1, 1, 1), (2, 1, 3, 3, 3, 3), None),
]
R6 = (1, 2, 3, 3, 3, 3)


def conv_fwd_bwd(O, x, w, b):
    pad = [1, 1, 1, 1]
    out = O.conv4d(x, w, b, pad)
    return (out, *O.conv4d_backward(rnd(*out.shape, seed=3), x, w, pad, [True, True, True]))


def _conv_bad(xs, ws, b, pad, match, xdtype=F32, wdtype=F32):
    return bad(f"{shape_id(xs, ws)}-pad{pad}-{xdtype}-{wdtype}-bias{b}",
               lambda: (rnd(*xs, dtype=xdtype), rnd(*ws, dtype=wdtype), None if b is None else rnd(b, dtype=F32), pad),
               ops.conv4d, match)


CONV4D = OpRow(
    "conv4d",
    # float32: 1e-5 relative to the output's scale (a sum of up to 10^4 products cancels)
    reference=[Case(f"{shape_id(xs, ws)}-pad{pad}", lambda d, xs=xs, ws=ws: conv_inputs(xs, ws, d),
                    lambda x, w, b, pad=pad: ops.conv4d(x, w, b, pad),
                    lambda x, w, b, pad=pad: reference.conv4d(*f64(x, w, b), pad),
                    tol=(1e-5, 1e-5), tol64=(1e-5, 1e-12), rel_atol=True) for xs, ws, pad in CONV_CASES],
    gradcheck=[Case(f"{shape_id(xs, ws)}-pad{pad}", lambda xs=xs, ws=ws: grad_(*conv_inputs(xs, ws)),
                    lambda x, w, b, pad=pad: ops.conv4d(x, w, b, pad))
               for xs, ws, pad in [((1, 2, 3, 4, 3, 3), (2, 2, 3, 3, 3, 3), None),
                                   ((1, 4, 3, 3, 4, 3), (1, 4, 3, 1, 3, 3), (1, 0, 2, 1)),
                                   ((2, 1, 3, 3, 3, 3), (4, 1, 3, 3, 3, 3), (0, 1, 1, 0))]],
    opcheck=[Case(f"bias={b}", lambda b=b: (*grad_(*conv_inputs((1, 2, 3, 4, 3, 3), (3, 2, 3, 3, 1, 3), F32, b)),
                                            *([] if b else [None]), [1, 1, 0, 1]), S.conv4d.default)
             for b in (True, False)] + [
        Case("bf16-out_dtype=float32", lambda: (*grad_(*conv_inputs((1, 2, 3, 4, 3, 3), (3, 2, 3, 3, 1, 3), BF16)),
                                                 [1, 1, 0, 1], F32), S.conv4d.default)],
    compile=[Case("relu-sum", lambda: conv_inputs((1, 2, 4, 3, 4, 3), (3, 2, 3, 3, 3, 3), F32),
                  lambda x, w, b: torch.relu(ops.conv4d(x, w, b)).sum(dim=(4, 5)), tol=(1e-5, 1e-5),
                  opts=dict(backend="aot_eager")),
             Case("bf16-out_dtype=float32", lambda: grad_(*conv_inputs((1, 2, 4, 3, 4, 3), (3, 2, 3, 3, 3, 3), BF16)),
                  lambda x, w, b: torch.relu(ops.conv4d(x, w, b, out_dtype=F32)).sum(dim=(4, 5)), tol=(1e-5, 1e-5),
                  opts=dict(backend="aot_eager"))],
    empty=[Case(shape_id(xs), lambda xs=xs: grad_(torch.zeros(xs), rnd(3, 2, 3, 3, 3, 3, dtype=F32, seed=1),
                                                  torch.zeros(3)), ops.conv4d,
                check=out_shapes(lambda x, w, b: (x.shape[0], 3, *x.shape[2:])))
           for xs in [(0, 2, 3, 3, 3, 3), (1, 2, 0, 3, 3, 3), (2, 2, 3, 3, 3, 0)]],
    bad_input=[
        _conv_bad((1, 2, 3, 3, 3), R6, None, None,
                  r"`x` must be a 6-D tensor \(B, Cin, H1, W1, H2, W2\), got shape \[1, 2, 3, 3, 3\]"),
        _conv_bad(R6, (1, 2, 3, 3, 3), None, [1, 1, 1, 1], r"`weight` must be a 6-D tensor"),
        _conv_bad(R6, (1, 3, 3, 3, 3, 3), None, None, r"`weight` dim 1 \(Cin\) must equal `x` dim 1"),
        _conv_bad(R6, R6, None, None, r"`x` and `weight` must have the same dtype", wdtype=F64),
        _conv_bad(R6, (2, 2, 3, 3, 3, 3), 3, None, r"`bias` must have Cout = 2 entries, got shape \[3\]"),
        _conv_bad(R6, R6, None, [1, -1, 1, 1], r"`padding` must be >= 0"),
        _conv_bad(R6, (1, 2, 5, 3, 3, 3), None, 0,
                  r"`x` dim 2 \(size 3\) with padding 0 is smaller than the `weight` kernel \(size 5\)"),
        bad("int", lambda: (torch.ones(R6, dtype=torch.int32), torch.ones(R6, dtype=torch.int32)), ops.conv4d,
            r"`x` must be a floating"),
        bad("out_dtype=float64", lambda: (rnd(*R6, dtype=F32), rnd(*R6, dtype=F32)),
            lambda x, w: ops.conv4d(x, w, out_dtype=F64), r"`out_dtype` must be None, the input dtype"),
        bad("bf16-out_dtype=float16", lambda: (rnd(*R6, dtype=BF16), rnd(*R6, dtype=BF16)),
            lambda x, w: ops.conv4d(x, w, out_dtype=torch.float16), r"`out_dtype` must be None, the input dtype"),
        bad("padding-spec", lambda: (rnd(1, 1, 3, 3, 3, 3), rnd(1, 1, 3, 3, 3, 3), None, (1, 1)), ops.conv4d,
            r"`padding` must be an int or a sequence of 4 ints", ValueError)],
    emu=[Case("fwd-bwd", lambda: conv_inputs((1, 2, 3, 4, 3, 3), (3, 2, 3, 3, 3, 3)), conv_fwd_bwd,
              tol=(1e-10, 1e-10))],
    emu_empty=[Case("batch0", lambda: (torch.zeros(0, 1, 3, 3, 3, 3), torch.zeros(2, 1, 3, 3, 3, 3)),
                    lambda O, x, w: O.conv4d(x, w, None, [1, 1, 1, 1]), check=out_shapes(lambda x, w: (0, 2, 3, 3, 3, 3)))],
    emu_bad_input=[bad("cin", lambda: (rnd(*R6), rnd(1, 3, 3, 3, 3, 3)), lambda O, x, w: O.conv4d(x, w, None, [1, 1, 1, 1]),
                       r"`weight` dim 1 \(Cin\) must equal `x` dim 1")],
)


# ---- max_pool4d -------------------------------------------------------------------------------------------------
def pool_fwd_bwd(O, x):
    k = [2, 2, 2, 2]
    values, argmax = O.max_pool4d(x, k)
    return values, argmax, O.max_pool4d_backward(rnd(*values.shape, seed=1), argmax, list(x.shape), k)


def _pool_shape(x, k=2):
    return (*x.shape[:2], *[s // k for s in x.shape[2:]])


MAX_POOL4D = OpRow(
    "max_pool4d",
    reference=[Case(f"{shape_id(s)}-k{k}", lambda d, s=s: (rnd(*s, dtype=d),), lambda x, k=k: ops.max_pool4d(x, k),
                    lambda x, k=k: reference.max_pool4d(x.double(), k), tol=None)
               for s, k in [((2, 1, 8, 6, 4, 10), 2), ((1, 3, 7, 5, 9, 4), (3, 2, 4, 1)), ((1, 1, 4, 4, 4, 4), 4),
                            ((2, 2, 3, 3, 3, 3), 1)]],
    gradcheck=[Case("k2", lambda: grad_(rnd(1, 2, 4, 2, 2, 4)), lambda t: ops.max_pool4d(t, 2)[0])],
    opcheck=[Case("k2212", lambda: (*grad_(rnd(1, 2, 4, 4, 2, 4, dtype=F32)), [2, 2, 1, 2]), S.max_pool4d.default)],
    compile=[Case("values-and-argmax", lambda: (rnd(1, 1, 4, 4, 4, 4, dtype=F32),),
                  lambda x: (lambda v, a: (v * 2, a + 1))(*ops.max_pool4d(x, 2)), tol=None,
                  opts=dict(backend="aot_eager"))],
    empty=[Case(shape_id(s), lambda s=s: grad_(rnd(*s, dtype=F32)), lambda x: ops.max_pool4d(x, 2),
                check=out_shapes(_pool_shape, lambda x: (x.shape[0], 4, *_pool_shape(x)[2:])))
           for s in [(0, 1, 4, 4, 4, 4), (1, 1, 1, 4, 4, 4)]],  # batch 0; a dim smaller than the kernel
    bad_input=[
        bad("5d", lambda: (rnd(1, 4, 4, 4, 4), 2), ops.max_pool4d,
            r"`x` must be a 6-D tensor \(B, C, H1, W1, H2, W2\), got shape \[1, 4, 4, 4, 4\]"),
        bad("k0", lambda: (rnd(1, 1, 4, 4, 4, 4), (2, 0, 2, 2)), ops.max_pool4d, r"`kernel_size` entries must be >= 1"),
        bad("int", lambda: (torch.ones(1, 1, 2, 2, 2, 2, dtype=torch.int64), 2), ops.max_pool4d, r"`x` must be a floating"),
        bad("k-2-entries", lambda: (rnd(1, 1, 2, 2, 2, 2), (2, 2)), ops.max_pool4d, "`kernel_size`", ValueError)],
    emu=[Case("fwd-bwd", lambda: (rnd(1, 2, 4, 4, 4, 4),), pool_fwd_bwd, tol=None)],
    emu_empty=[Case("batch0", lambda: (rnd(0, 1, 4, 4, 4, 4),), lambda O, x: O.max_pool4d(x, [2, 2, 2, 2]),
                    check=out_shapes(_pool_shape))],
    emu_bad_input=[bad("k0", lambda: (rnd(1, 1, 4, 4, 4, 4),), lambda O, x: O.max_pool4d(x, [2, 0, 2, 2]),
                       r"`kernel_size` entries must be >= 1")],
)


ROWS = [CONV4D, MAX_POOL4D]
