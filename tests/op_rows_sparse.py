"""Op-contract rows (tests/op_contract.py) of the sparse ops: corr4d_topk, kernel_map4d, sparse_conv4d."""
import functools

import torch
from op_contract import F32, F64, Case, OpRow, bad, f64, grad_, kw_id, out_shapes, pair, rnd, shape_id, sparse_coords

from semcorr_ext import ops, reference

S = torch.ops.semcorr
I64 = torch.int64
_INT = torch.int32


# ---- corr4d_topk ------------------------------------------------------------------------------------------------
TOPK_SHAPES = [(((2, 8, 5, 7), (2, 8, 6, 3)), 5), (((1, 1, 1, 1), (1, 1, 1, 1)), 1),
               (((3, 33, 4, 1), (3, 33, 1, 9)), 9), (((1, 16, 3, 3), (1, 16, 4, 4)), 16)]


def topk_fwd_bwd(O, s, t):
    v, i = O.corr4d_topk(s, t, 3, True, 1e-6)
    return (v, i, *O.corr4d_topk_backward(rnd(*v.shape, seed=2), s, t, v, i, True, 1e-6))


def _topk_bad(src, tgt, k, match):
    return bad(f"{shape_id(src.shape, tgt.shape)}-{src.dtype}-{tgt.dtype}-k{k}", lambda: (src, tgt),
               lambda s, t: ops.corr4d_topk(s, t, k), match)


def _topk_shape(k):
    return lambda a, b: (a.shape[0], *a.shape[2:], k)


CORR4D_TOPK = OpRow(
    "corr4d_topk",
    # random data: no ties, the float64 reference picks the same indices
    reference=[Case(f"{kw_id(kw)}-{shape_id(*s)}-k{k}", lambda d, s=s: pair(*s, dtype=d),
                    lambda a, b, k=k, kw=kw: ops.corr4d_topk(a, b, k, **kw),
                    lambda a, b, k=k, kw=kw: reference.corr4d_topk(*f64(a, b), k, **kw))
               for kw in (dict(), dict(normalize=False), dict(eps=0.0)) for s, k in TOPK_SHAPES],
    gradcheck=[Case(f"normalize={n}", lambda: grad_(*pair((2, 5, 3, 2), (2, 5, 2, 3), F64)),
                    lambda a, b, n=n: ops.corr4d_topk(a, b, 3, normalize=n)[0]) for n in (True, False)],
    opcheck=[Case(f"normalize={n}", lambda n=n: (*grad_(*pair((2, 4, 3, 3), (2, 4, 2, 3))), 3, n, 1e-6),
                  S.corr4d_topk.default) for n in (True, False)],
    compile=[Case("values-and-indices", lambda: pair((2, 4, 3, 3), (2, 4, 5, 2)),
                  lambda a, b: (lambda v, i: v.sum(-1) + i[..., 0].to(v.dtype))(*ops.corr4d_topk(a, b, 3)),
                  opts=dict(backend="aot_eager")),
             Case("inductor-backward", lambda: grad_(*pair((1, 4, 3, 3), (1, 4, 2, 4))),
                  lambda a, b: ops.corr4d_topk(a, b, 2)[0].square().sum())],
    empty=[Case(f"{shape_id(*s)}-k{k}", lambda s=s: grad_(*pair(*s)), lambda a, b, k=k: ops.corr4d_topk(a, b, k),
                check=out_shapes(_topk_shape(k), _topk_shape(k)))
           for s, k in [(((0, 4, 3, 3), (0, 4, 2, 2)), 2), (((2, 4, 0, 3), (2, 4, 2, 2)), 2),
                        (((2, 4, 3, 3), (2, 4, 2, 2)), 0), (((2, 4, 3, 3), (2, 4, 2, 0)), 0)]],
    bad_input=[
        _topk_bad(rnd(2, 4, 3), rnd(2, 4, 3, 3), 1, r"`src` must be a 4-D tensor \(B, C, Hs, Ws\), got shape \[2, 4, 3\]"),
        _topk_bad(rnd(2, 4, 3, 3), rnd(2, 4, 3, 3, 1), 1, r"`tgt` must be a 4-D tensor"),
        _topk_bad(rnd(2, 4, 3, 3), rnd(2, 5, 3, 3), 1, r"same number of channels.*\[2, 4, 3, 3\] and \[2, 5, 3, 3\]"),
        _topk_bad(rnd(2, 4, 3, 3), rnd(3, 4, 3, 3), 1, r"same batch size"),
        _topk_bad(rnd(2, 4, 3, 3, dtype=F32), rnd(2, 4, 3, 3), 1, r"`src` and `tgt` must have the same dtype"),
        _topk_bad(torch.ones(2, 4, 3, 3, dtype=_INT), torch.ones(2, 4, 3, 3, dtype=_INT), 1, r"`src` must be a floating"),
        _topk_bad(rnd(2, 4, 3, 3), rnd(2, 4, 2, 3), 7, r"`k` must be in \[0, Ht\*Wt\] = \[0, 6\], got k=7"),
        _topk_bad(rnd(2, 4, 3, 3), rnd(2, 4, 2, 3), -1, r"`k` must be in \[0, Ht\*Wt\]"),
        bad("eps", lambda: pair((1, 2, 2, 2), (1, 2, 2, 2)), lambda s, t: ops.corr4d_topk(s, t, 1, eps=-1.0),
            r"`eps` must be >= 0"),
    ],
    emu=[Case("fwd-bwd", lambda: pair((2, 6, 3, 4), (2, 6, 4, 5), F64), topk_fwd_bwd, tol=(1e-10, 1e-12))],
    emu_empty=[Case("k0", lambda: pair((1, 2, 2, 2), (1, 2, 2, 2), F64), lambda O, s, t: O.corr4d_topk(s, t, 0, True, 1e-6),
                    check=out_shapes(lambda a, b: (1, 2, 2, 0)))],
    emu_bad_input=[
        bad("k-above-32", lambda: pair((1, 2, 2, 2), (1, 2, 6, 6), F64),
            lambda O, s, t: O.corr4d_topk(s, t, 33, True, 1e-6), r"`k` must be <= 32 on CUDA"),
        bad("k-above-targets", lambda: pair((1, 2, 2, 2), (1, 2, 2, 2), F64),
            lambda O, s, t: O.corr4d_topk(s, t, 5, True, 1e-6), r"`k` must be in \[0, Ht\*Wt\]")],
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

ROWS = [CORR4D_TOPK, KERNEL_MAP4D, SPARSE_CONV4D]
