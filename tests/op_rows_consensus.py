"""Op-contract rows (tests/op_contract.py) of the neighbourhood-consensus ops: conv4d, max_pool4d, kernel_map4d,
sparse_conv4d."""
import functools

import torch
from op_contract import F32, F64, Case, OpRow, f64, grad_, rnd, sparse_coords
from op_rows_correlation import bad, out_shapes, shape_id

from semcorr_ext import ops, reference

S = torch.ops.semcorr


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
             for b in (True, False)],
    compile=[Case("relu-sum", lambda: conv_inputs((1, 2, 4, 3, 4, 3), (3, 2, 3, 3, 3, 3), F32),
                  lambda x, w, b: torch.relu(ops.conv4d(x, w, b)).sum(dim=(4, 5)), tol=(1e-5, 1e-5),
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


# ---- kernel_map4d -----------------------------------------------------------------------------------------------
def km_tuple(km):
    return km.in_rows, km.out_rows, km.offsets_ptr


def _km_check(ks):
    K = 81 if ks == 3 else (45 if ks != 1 else 1)

    def check(outs, inputs):
        in_rows, _, ptr = outs
        assert ptr.shape == (K + 1,)
        assert ops.kernel_map4d(inputs[0], ks).kernel_size == ((ks,) * 4 if isinstance(ks, int) else ks)
        p0, p1 = ptr[K // 2].item(), ptr[K // 2 + 1].item()  # the centre offset maps every point to itself
        assert torch.equal(in_rows[p0:p1], torch.arange(inputs[0].shape[0]))
    return check


def _no_pairs(outs, n_ptr):
    assert outs[0].numel() == 0 and outs[1].numel() == 0 and outs[2].tolist() == [0] * n_ptr


I64 = torch.int64
KERNEL_MAP4D = OpRow(
    "kernel_map4d", dtypes=(None,),
    reference=[Case(f"k{ks}-{cd}", lambda d, cd=cd: (sparse_coords(2, (4, 5, 3, 6), 90, dtype=cd),),
                    lambda c, ks=ks: km_tuple(ops.kernel_map4d(c, ks)), lambda c, ks=ks: reference.kernel_map4d(c, ks),
                    check=_km_check(ks)) for ks in (3, (3, 1, 3, 5), 1) for cd in (I64, torch.int32)],
    opcheck=[Case("k3", lambda: (sparse_coords(2, (3, 3, 3, 3), 30), [3]), S.kernel_map4d.default,
                  opts=dict(test_utils=("test_schema", "test_faketensor")))],
    compile=[Case("k3", lambda: (sparse_coords(1, (3, 3, 3, 3), 20),), lambda c: S.kernel_map4d(c, [3]), tol=None,
                  opts=dict(backend="aot_eager"))],
    empty=[Case("no-points", lambda: (torch.zeros(0, 5, dtype=I64),), lambda c: km_tuple(ops.kernel_map4d(c, 3)),
                check=lambda o, i: _no_pairs(o, 82))],
    bad_input=[bad(f"{m[:28]}", lambda c=c, ks=ks: (c, ks), ops.kernel_map4d, m, (RuntimeError, ValueError)) for c, ks, m in [
        (torch.zeros(3, 4, dtype=I64), 3, r"`coords` must have 5 columns"),
        (torch.zeros(3, 5), 3, r"`coords` must be int32 or int64, got Float"),
        (torch.tensor([[0, 0, 0, 0, 0], [0, 1, -1, 0, 0]]), 3, r"`coords` must be >= 0, got -1 in column 2"),
        (torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]), 3,
         r"unique rows, got a duplicate of \(0, 1, 0, 0, 0\) at rows 0 and 2"),
        (torch.zeros(1, 5, dtype=I64), 2, r"`kernel_size` must be odd and >= 1"),
        (torch.zeros(1, 5, dtype=I64), (3, 3), r"`kernel_size` must be an int or 4 ints")]],
    emu=[Case("k3", lambda: (sparse_coords(1, (3, 3, 3, 3), 20),), lambda O, c: O.kernel_map4d(c, [3]), tol=None)],
    emu_empty=[Case("no-points", lambda: (torch.zeros(0, 5, dtype=I64),), lambda O, c: O.kernel_map4d(c, [1]),
                    check=out_shapes(lambda c: (0,), lambda c: (0,), lambda c: (2,)))],
    emu_bad_input=[bad("duplicate", lambda: (torch.tensor([[0, 1, 1, 1, 1], [0, 1, 1, 1, 1]]),),
                       lambda O, c: O.kernel_map4d(c, [3]), r"`coords` must have unique rows"),
                   bad("negative", lambda: (torch.tensor([[0, 1, 1, -1, 1]]),), lambda O, c: O.kernel_map4d(c, [3]),
                       r"`coords` must be >= 0")],
)


# ---- sparse_conv4d ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def kmap(B, dims, n, seed, ks):
    """A cached kernel map (read-only tensors) of sparse_coords(B, dims, n, seed)."""
    coords = sparse_coords(B, dims, n, seed=seed)
    return coords, ops.kernel_map4d(coords, ks)


def sparse_fwd_bwd(O, f, w, b, *maps):
    out = O.sparse_conv4d(f, w, b, *maps)
    return (out, *O.sparse_conv4d_backward(rnd(*out.shape, seed=3), f, w, *maps))


def _sparse_inputs(dtype=F64, bias=True, k4=(3, 3, 3, 3), n=90, cin=3, cout=4, dims=(4, 5, 3, 6), B=2, seed=0):
    coords = sparse_coords(B, dims, n, seed=seed)
    f, w = rnd(coords.shape[0], cin, dtype=dtype), rnd(cout, cin, *k4, dtype=dtype, seed=1)
    return f, coords, w, (rnd(cout, dtype=dtype, seed=2) if bias else None)


def _emu_maps(bias=True, dtype=F64, n=20, ks=(3, 3, 3, 3)):
    """Emulator arguments (feats, weight, bias, in_rows, out_rows, offsets_ptr) on n points of a 3^4 grid."""
    coords, km = kmap(1, (3, 3, 3, 3), n, 3, ks)
    return (rnd(n, 3, dtype=dtype), rnd(2, 3, *ks, dtype=dtype, seed=1),
            rnd(2, dtype=dtype, seed=2) if bias else None, *km_tuple(km))


def _opcheck_inputs(bias):
    coords, km = kmap(2, (3, 3, 3, 3), 30, 0, 3)
    f, w = rnd(coords.shape[0], 3, dtype=F32), rnd(2, 3, 3, 3, 3, 3, dtype=F32, seed=1)
    return (*grad_(f, w), grad_(rnd(2, dtype=F32, seed=2))[0] if bias else None, *km_tuple(km))


def _sparse_net(f, w, b, w2, in_rows, out_rows, ptr):
    m = ops.KernelMap(in_rows, out_rows, ptr, (3, 3, 3, 3), f.shape[0])
    return ops.sparse_conv4d(torch.relu(ops.sparse_conv4d(f, None, w, b, kernel_map=m)), None, w2, kernel_map=m)


def _net_inputs(grad=False):
    coords, km = kmap(1, (4, 4, 3, 3), 40, 0, 3)
    f = rnd(coords.shape[0], 3, dtype=F32)
    return (f.requires_grad_(grad), rnd(3, 3, 3, 3, 3, 3, dtype=F32, seed=1), rnd(3, dtype=F32, seed=2),
            rnd(1, 3, 3, 3, 3, 3, dtype=F32, seed=3), *km_tuple(km))


def _sparse_bad(id, make, match, error=RuntimeError, raw=False):
    return bad(id, make, S.sparse_conv4d if raw else ops.sparse_conv4d, match, error)


def _bad_args(**kw):
    """sparse_conv4d arguments of 10 points with one changed: f (10, 3), coords, w (2, 3, 3^4), the map."""
    coords, km = kmap(1, (3, 3, 3, 3), 10, 0, 3)
    a = dict(f=rnd(10, 3, dtype=F32), coords=coords, w=rnd(2, 3, 3, 3, 3, 3, dtype=F32), b=None, maps=km_tuple(km))
    a.update(kw)
    return a


SPARSE_CONV4D = OpRow(
    "sparse_conv4d",
    reference=[Case(f"k{ks}-bias={bias}", lambda d, ks=ks, bias=bias: _sparse_inputs(d, bias, (ks,) * 4 if ks in (1, 3)
                                                                                      else ks),
                    ops.sparse_conv4d, lambda f, c, w, b: reference.sparse_conv4d(*f64(f, c, w, b)))
               for ks, bias in [(3, True), ((3, 1, 3, 5), False), (1, True)]],
    gradcheck=[Case(f"bias={bias}", lambda bias=bias: grad_(*[t for t in _sparse_inputs(
        F64, bias, (3, 1, 3, 3), n=25, cin=2, cout=3, dims=(3, 3, 2, 3), seed=5) if t is not None and t.is_floating_point()]),
        (lambda f, w, b: ops.sparse_conv4d(f, None, w, b, kernel_map=kmap(2, (3, 3, 2, 3), 25, 5, (3, 1, 3, 3))[1]))
        if bias else (lambda f, w: ops.sparse_conv4d(f, None, w, kernel_map=kmap(2, (3, 3, 2, 3), 25, 5, (3, 1, 3, 3))[1])))
        for bias in (True, False)],
    opcheck=[Case(f"bias={bias}", lambda bias=bias: _opcheck_inputs(bias), S.sparse_conv4d.default)
             for bias in (True, False)],
    compile=[Case("two-layers", _net_inputs, _sparse_net, opts=dict(backend="aot_eager")),
             Case("inductor-backward", lambda: _net_inputs(grad=True), lambda *a: _sparse_net(*a).square().sum())],
    empty=[Case("no-points", lambda: (torch.zeros(0, 3, requires_grad=True), torch.zeros(0, 5, dtype=I64),
                                      *grad_(rnd(2, 3, 3, 3, 3, 3, dtype=F32), rnd(2, dtype=F32))), ops.sparse_conv4d,
                check=out_shapes(lambda f, c, w, b: (0, 2)))],
    bad_input=[
        _sparse_bad("weight-5d", lambda: (_bad_args()["f"], _bad_args()["coords"], rnd(2, 3, 3, 3, 3, dtype=F32)),
                    r"`weight` must be a 6-D tensor \(Cout, Cin, k1, k2, k3, k4\)"),
        _sparse_bad("cin", lambda: (_bad_args()["f"], _bad_args()["coords"], rnd(2, 4, 3, 3, 3, 3, dtype=F32)),
                    r"`weight` dim 1 \(Cin\) must equal `feats` dim 1"),
        _sparse_bad("bias", lambda: (*[_bad_args()[k] for k in ("f", "coords", "w")], rnd(3, dtype=F32)),
                    r"`bias` must have shape \(Cout,\) = \(2\)"),
        _sparse_bad("dtype", lambda: (_bad_args()["f"].double(), _bad_args()["coords"], _bad_args()["w"]),
                    r"`feats` and `weight` must have the same dtype"),
        _sparse_bad("feats-3d", lambda: (_bad_args()["f"][None], None, _bad_args()["w"], None, kmap(1, (3, 3, 3, 3), 10, 0,
                                                                                                    3)[1]),
                    r"`feats` must be a 2-D tensor"),
        _sparse_bad("map-kernel-size", lambda: (_bad_args()["f"], None, rnd(2, 3, 1, 1, 1, 1, dtype=F32), None,
                                                kmap(1, (3, 3, 3, 3), 10, 0, 3)[1]),
                    r"built for kernel size \(3, 3, 3, 3\) but `weight` has \(1, 1, 1, 1\)", ValueError),
        _sparse_bad("map-points", lambda: (_bad_args()["f"][:9], None, _bad_args()["w"], None,
                                           kmap(1, (3, 3, 3, 3), 10, 0, 3)[1]),
                    r"built for 10 points but `feats` has 9 rows", ValueError),
        # the raw op validates the map too
        _sparse_bad("raw-offsets", lambda: (_bad_args()["f"], rnd(2, 3, 1, 1, 1, 1, dtype=F32), None, *_bad_args()["maps"]),
                    r"kernel map has 81 offsets but `weight` has k1\*k2\*k3\*k4 = 1", raw=True),
        _sparse_bad("raw-in-rows", lambda: (_bad_args()["f"][:9], _bad_args()["w"], None, *_bad_args()["maps"]),
                    r"`in_rows` must index rows of `feats` in \[0, 9\)", raw=True),
        _sparse_bad("raw-int32-rows", lambda: (_bad_args()["f"], _bad_args()["w"], None,
                                               _bad_args()["maps"][0].int(), *_bad_args()["maps"][1:]),
                    r"`in_rows` must be a 1-D int64 tensor", raw=True)],
    emu=[Case("fwd-bwd", lambda: _emu_maps(ks=(3, 1, 1, 3)), sparse_fwd_bwd, tol=(1e-10, 1e-12)),
         Case("float32-full-kernel-no-bias", lambda: _emu_maps(False, F32, n=30), lambda O, *a: O.sparse_conv4d(*a))],
    emu_empty=[Case("no-points", lambda: (torch.zeros(0, 3, dtype=F64), rnd(2, 3, 3, 3, 3, 3), None,
                                          *km_tuple(ops.kernel_map4d(torch.zeros(0, 5, dtype=I64), 3))),
                    lambda O, *a: O.sparse_conv4d(*a), check=out_shapes(lambda *a: (0, 2)))],
    emu_bad_input=[
        bad("offsets", lambda: _emu_maps(False)[:1] + (rnd(2, 3, 1, 1, 1, 1),) + _emu_maps(False)[2:],
            lambda O, *a: O.sparse_conv4d(*a), r"kernel map has 81 offsets but `weight` has"),
        bad("in-rows", lambda: (rnd(5, 3),) + _emu_maps(False)[1:], lambda O, *a: O.sparse_conv4d(*a),
            r"`in_rows` must index rows of `feats`")],
)

ROWS = [CONV4D, MAX_POOL4D, KERNEL_MAP4D, SPARSE_CONV4D]
