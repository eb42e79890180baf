"""Op-contract rows (tests/op_contract.py) of the PatchMatch ops: patchmatch_propagate, gather_windows4d,
gather_windows4d_points, gather_windows4d_linear, patchmatch_select."""
import functools

import torch
from op_contract import F32, F64, Case, OpRow, bad, f64, gen, grad_, grid_pairs, out_shapes, pair, points, rnd, shape_id

from semcorr_ext import ops, reference
from semcorr_ext.ops.patchmatch import num_candidates, pmnc_offsets

S = torch.ops.semcorr
I64 = torch.int64
# torch.testing.assert_close's float32 default, which the moved compile tests used
TORCH_F32 = (1.3e-6, 1e-5)


# ---- patchmatch_propagate ---------------------------------------------------------------------------------------
def _prop_kw(size, R=0, radius=0, seed=7, it=3):
    return dict(target_size=size, random_samples=R, radius=radius, seed=seed, iteration=it)


def _prop_bad(id, match, m=None, off=None, size=(4, 4), R=1, radius=1):
    return bad(id, lambda: (torch.zeros(1, 2, 2, 1, 2, dtype=I64) if m is None else m,
                            pmnc_offsets() if off is None else off),
               lambda mm, oo: ops.patchmatch_propagate(mm, oo, target_size=size, random_samples=R, radius=radius), match)


def _cand_shape(K_of=lambda m: m.shape[3], R=1):
    return lambda m, off: (*m.shape[:3], num_candidates(K_of(m), 21, R), 2)


PATCHMATCH_PROPAGATE = OpRow(
    "patchmatch_propagate", dtypes=(None,),
    reference=[Case(f"{shape_id(s)}-R{R}-radius{radius}", lambda d, s=s: (grid_pairs(*s, spill=2), pmnc_offsets()),
                    lambda m, off, s=s, R=R, radius=radius: ops.patchmatch_propagate(m, off, **_prop_kw(s[4:], R, radius)),
                    lambda m, off, s=s, R=R, radius=radius: reference.patchmatch_propagate(m, off,
                                                                                          **_prop_kw(s[4:], R, radius)),
                    check=out_shapes(_cand_shape(R=R)))
               for s in [(2, 4, 5, 1, 6, 7), (1, 3, 3, 2, 4, 4), (1, 1, 1, 1, 1, 1), (2, 6, 2, 3, 2, 9)]
               for R, radius in [(0, 0), (3, 2), (2, 0)]],
    opcheck=[Case("R2", lambda: (grid_pairs(1, 3, 4, 1, 5, 5), pmnc_offsets(), [5, 5], 2, 1, 3, 0),
                  S.patchmatch_propagate.default)],
    compile=[Case("masked", lambda: (grid_pairs(1, 3, 4, 1, 5, 5), pmnc_offsets()),
                  lambda x, off: (lambda c, v: c * v.unsqueeze(-1))(*ops.patchmatch_propagate(
                      x, off, **_prop_kw((5, 5), 2, 1, seed=3, it=0))), tol=None,
                  opts=dict(backend="aot_eager"))],
    empty=[Case(shape_id(s), lambda s=s: (torch.zeros(*s, 2, dtype=I64), pmnc_offsets()),
                lambda m, off: ops.patchmatch_propagate(m, off, target_size=(4, 4), random_samples=1, radius=1),
                check=out_shapes(_cand_shape(), lambda m, off: _cand_shape()(m, off)[:4]))
           for s in [(0, 3, 3, 1), (2, 0, 3, 1), (2, 3, 3, 0)]],
    bad_input=[
        _prop_bad("matches-4d", r"`matches` must be a 5-D tensor \(B, Hs, Ws, K, 2\)", m=torch.zeros(1, 2, 2, 2, dtype=I64)),
        _prop_bad("matches-float", r"`matches` must be int64, got Float", m=torch.zeros(1, 2, 2, 1, 2)),
        _prop_bad("offsets-3-cols", r"`offsets` must be a 2-D tensor \(P, 2\), got shape \[3, 3\]",
                  off=torch.zeros(3, 3, dtype=I64)),
        _prop_bad("offsets-int32", r"`offsets` must be int64", off=torch.zeros(3, 2, dtype=torch.int32)),
        _prop_bad("size", r"`target_size` must be \[Ht, Wt\] with both > 0", size=(0, 4)),
        _prop_bad("random-samples", r"`random_samples` must be >= 0, got -1", R=-1),
        _prop_bad("radius", r"`radius` must be in \[0, 2\^30\), got -2", radius=-2)],
    emu=[Case("R2-radius2", lambda: (grid_pairs(1, 4, 5, 1, 6, 7, spill=1), pmnc_offsets()),
              lambda O, m, off: O.patchmatch_propagate(m, off, [6, 7], 2, 2, 3, 1), tol=None)],
    emu_empty=[Case("batch0", lambda: (torch.zeros(0, 3, 3, 1, 2, dtype=I64), pmnc_offsets()),
                    lambda O, m, off: O.patchmatch_propagate(m, off, [4, 4], 0, 0, 0, 0),
                    check=out_shapes(lambda m, off: (0, 3, 3, 30, 2), lambda m, off: (0, 3, 3, 30)))],
    emu_bad_input=[bad("matches-float", lambda: (torch.zeros(1, 2, 2, 1, 2), pmnc_offsets()),
                       lambda O, m, off: O.patchmatch_propagate(m, off, [4, 4], 0, 0, 0, 0),
                       r"semcorr::patchmatch_propagate: `matches` must be int64")],
)


# ---- gather_windows4d -------------------------------------------------------------------------------------------
def zero_windows(shape):
    """An empty-case check: the output has shape(*inputs) and is all zeros (windows outside an empty volume)."""
    def check(outs, inputs):
        out_shapes(shape)(outs, inputs)
        assert outs[0].abs().sum() == 0
    return check


def _win_shape(w):
    return lambda corr, c: (*c.shape[:4], w, w, w, w)


@functools.lru_cache(maxsize=None)
def dup_candidates():
    c = grid_pairs(1, 3, 4, 3, 3, 4, spill=2)
    c[0, 0, 0, 1] = c[0, 0, 0, 0]  # a duplicate candidate: its window's gradient counts twice
    return c


@functools.lru_cache(maxsize=None)
def dup_points():
    p = points(9, (2, 3, 4, 3, 4), spill=2)
    p[1] = p[0]  # a repeated point: its window's gradient counts twice
    return p


def window_reference(op, ref, index, cases):
    """Reference cases of a window op: (volume shape, n, window) on a random volume and index(shape, n), the n
    candidates per source position or the n points (bitwise: windows are copies)."""
    return [Case(f"{shape_id(s)}-n{n}-w{w}", lambda d, s=s, n=n: (rnd(*s, dtype=d), index(s, n)),
                 lambda c, i, w=w: op(c, i, w), lambda c, i, w=w: ref(f64(c), i, w), tol=None) for s, n, w in cases]


def window_gradcheck(op, shape, index, small, small_index):
    """gradcheck cases of a window op: windows 1, 3, 5 in fast mode (random projections: the full Jacobian has one
    backward call per output element, n w^4 per volume), and the full Jacobian of a small volume `shape[small]`."""
    return [Case(f"w{w}", lambda: grad_(rnd(*shape)), lambda x, w=w: op(x, index(), w), opts=dict(fast_mode=True))
            for w in (1, 3, 5)] + [Case("w3-full-jacobian", lambda: grad_(rnd(*shape)[small].contiguous()),
                                        lambda x: op(x, small_index(), 3))]


def check_window_backward(op, ref, corr, index, grad):
    """A window op's backward twice (bitwise equal: a scatter without atomics) and against autograd through the
    float64 reference."""
    (g1,) = torch.autograd.grad(op(corr, index), corr, grad)
    (g2,) = torch.autograd.grad(op(corr, index), corr, grad)
    (gr,) = torch.autograd.grad(ref(corr.double(), index), corr, grad.double())
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1, gr.float(), rtol=1e-5, atol=1e-5)


def windows_fwd_bwd(O, corr, cand):
    out = O.gather_windows4d(corr, cand, 3)
    return out, O.gather_windows4d_backward(rnd(*out.shape, seed=2), cand, list(corr.shape), 3)


def points_fwd_bwd(O, corr, pts):
    out = O.gather_windows4d_points(corr, pts, 3)
    return out, O.gather_windows4d_points_backward(rnd(*out.shape, seed=2), pts, list(corr.shape), 3)


def _corr5(*s, dtype=F32):
    return rnd(*s, dtype=dtype)


def _win_bad(corr, cand, w, match):
    return bad(f"{shape_id(corr.shape, cand.shape)}-{cand.dtype}-w{w}", lambda: (corr, cand, w), ops.gather_windows4d, match)


_Z = functools.partial(torch.zeros, dtype=I64)
GATHER_WINDOWS4D = OpRow(
    "gather_windows4d", double_backward=True,
    reference=window_reference(ops.gather_windows4d, reference.gather_windows4d,
                               lambda s, n: grid_pairs(*s[:3], n, *s[3:], spill=3),
                               [((2, 4, 5, 6, 3), 3, 5), ((1, 1, 1, 1, 1), 2, 3), ((1, 3, 2, 4, 4), 1, 1),
                                ((2, 5, 5, 5, 5), 4, 7)]),
    gradcheck=window_gradcheck(ops.gather_windows4d, (1, 3, 4, 3, 4), dup_candidates,
                               (slice(None), slice(2), slice(2), slice(2), slice(3)),
                               lambda: dup_candidates()[:, :2, :2, :1].clamp(0, 1)),
    opcheck=[Case("w3", lambda: (*grad_(rnd(1, 3, 3, 4, 3, dtype=F32)), grid_pairs(1, 3, 3, 2, 4, 3, spill=3), 3),
                  S.gather_windows4d.default)],
    compile=[Case("after-corr4d", lambda: (*pair((2, 4, 3, 3), (2, 4, 3, 4)), grid_pairs(2, 3, 3, 2, 3, 4, spill=3)),
                  lambda a, b, c: ops.gather_windows4d(ops.corr4d(a, b), c, 3).amax(dim=(-4, -3, -2, -1)),
                  tol=TORCH_F32)],
    empty=[Case(f"{shape_id(s)}-N{N}", lambda s=s, N=N: (torch.rand(*s, requires_grad=True), _Z(*s[:3], N, 2)),
                lambda c, cand: ops.gather_windows4d(c, cand, 3), check=out_shapes(_win_shape(3)),
                ref=lambda c, cand: reference.gather_windows4d(c, cand, 3))  # zero windows where Ht = 0
           for s, N in [((0, 2, 2, 2, 2), 2), ((1, 2, 2, 2, 2), 0), ((1, 2, 2, 0, 3), 2)]],
    bad_input=[
        _win_bad(torch.rand(2, 3, 3, 3), _Z(2, 3, 3, 1, 2), 3,
                 r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
        _win_bad(torch.rand(1, 2, 2, 2, 2), _Z(1, 2, 2, 1, 3), 3, r"`candidates` must be a 5-D tensor \(B, Hs, Ws, N, 2\)"),
        _win_bad(torch.rand(1, 2, 2, 2, 2), _Z(1, 2, 3, 1, 2), 3,
                 r"`candidates` must be \(B, Hs, Ws, N, 2\) with \(B, Hs, Ws\) of `corr`"),
        _win_bad(torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 1, 2), 3, r"`candidates` must be int64"),
        _win_bad(torch.rand(1, 2, 2, 2, 2), _Z(1, 2, 2, 1, 2), 4, r"`window` must be odd"),
        _win_bad(torch.ones(1, 2, 2, 2, 2, dtype=I64), _Z(1, 2, 2, 1, 2), 3, r"`corr` must be a floating tensor")],
    emu=[Case("fwd-bwd", lambda: (rnd(1, 4, 3, 5, 4), grid_pairs(1, 4, 3, 2, 5, 4, seed=1, spill=2)), windows_fwd_bwd,
              tol=None)],  # the same order of additions: bitwise equal
    emu_empty=[Case("N0", lambda: (torch.rand(1, 2, 2, 2, 2), _Z(1, 2, 2, 0, 2)),
                    lambda O, c, cand: O.gather_windows4d(c, cand, 3), check=out_shapes(_win_shape(3)))],
    emu_bad_input=[bad("even-window", lambda: (torch.rand(1, 2, 2, 2, 2), _Z(1, 2, 2, 1, 2)),
                       lambda O, c, cand: O.gather_windows4d(c, cand, 2),
                       r"semcorr::gather_windows4d: `window` must be odd")],
)


# ---- gather_windows4d_points ------------------------------------------------------------------------------------
def _pts_bad(corr, pts, w, match):
    return bad(f"{shape_id(corr.shape, pts.shape)}-{pts.dtype}-w{w}", lambda: (corr, pts, w),
               ops.gather_windows4d_points, r"semcorr::gather_windows4d_points: " + match)


GATHER_WINDOWS4D_POINTS = OpRow(
    "gather_windows4d_points", double_backward=True,
    reference=window_reference(ops.gather_windows4d_points, reference.gather_windows4d_points,
                               lambda s, n: points(n, s), [((2, 4, 5, 6, 3), 40, 5), ((1, 1, 1, 1, 1), 3, 3),
                                                           ((1, 3, 2, 4, 4), 7, 1), ((2, 5, 5, 5, 5), 30, 7)]),
    gradcheck=window_gradcheck(ops.gather_windows4d_points, (2, 3, 4, 3, 4), dup_points,
                               (slice(1), slice(2), slice(2), slice(2), slice(3)), lambda: dup_points()[:4]),
    opcheck=[Case("w3", lambda: (*grad_(rnd(1, 3, 3, 4, 3, dtype=F32)), points(6, (1, 3, 3, 4, 3)), 3),
                  S.gather_windows4d_points.default)],
    compile=[Case("after-corr4d", lambda: (*pair((2, 4, 3, 3), (2, 4, 3, 4)), points(7, (2, 3, 3, 3, 4))),
                  lambda a, b, p: ops.gather_windows4d_points(ops.corr4d(a, b), p, 3).amax(dim=(-4, -3, -2, -1)),
                  tol=TORCH_F32)],
    empty=[Case(f"{shape_id(s)}-M{M}", lambda s=s, M=M: (torch.rand(*s, requires_grad=True), _Z(M, 5)),
                lambda c, p: ops.gather_windows4d_points(c, p, 3), check=zero_windows(lambda c, p: (p.shape[0], 3, 3, 3, 3)))
           for s, M in [((0, 2, 2, 2, 2), 3), ((1, 2, 2, 2, 2), 0), ((1, 2, 2, 0, 3), 2)]],
    bad_input=[
        _pts_bad(torch.rand(2, 3, 3, 3), _Z(1, 5), 3, r"`corr` must be a 5-D tensor \(B, Hs, Ws, Ht, Wt\), got shape \[2, 3, 3, 3\]"),
        _pts_bad(torch.rand(1, 2, 2, 2, 2), _Z(3, 4), 3,
                 r"`points` must be a 2-D tensor \(M, 5\) of \(b, i, j, u, v\), got shape \[3, 4\]"),
        _pts_bad(torch.rand(1, 2, 2, 2, 2), torch.zeros(3, 5), 3, r"`points` must be int64"),
        _pts_bad(torch.rand(1, 2, 2, 2, 2), _Z(3, 5), 4, r"`window` must be odd"),
        _pts_bad(torch.ones(1, 2, 2, 2, 2, dtype=I64), _Z(3, 5), 3, r"`corr` must be a floating tensor")],
    emu=[Case("fwd-bwd", lambda: (rnd(2, 4, 3, 5, 4), points(30, (2, 4, 3, 5, 4), seed=1)), points_fwd_bwd, tol=None)],
    emu_empty=[Case("M0", lambda: (torch.rand(1, 2, 2, 2, 2), _Z(0, 5)), lambda O, c, p: O.gather_windows4d_points(c, p, 3),
                    check=out_shapes(lambda c, p: (0, 3, 3, 3, 3)))],
    emu_bad_input=[bad("float-points", lambda: (torch.rand(1, 2, 2, 2, 2), torch.zeros(1, 5)),
                       lambda O, c, p: O.gather_windows4d_points(c, p, 3),
                       r"semcorr::gather_windows4d_points: `points` must be int64")],
)


# ---- gather_windows4d_linear ------------------------------------------------------------------------------------
def linear_args(M, shape, C=4, w=3, dtype=F64, seed=0):
    g = gen(seed + 7)
    return (rnd(*shape, dtype=dtype, seed=seed), points(M, shape, seed=seed),
            torch.randn(C, w, w, w, w, generator=g, dtype=dtype), torch.randn(C, generator=g, dtype=dtype))


def _lin_bad(id, match, **kw):
    def make():
        args = dict(corr=torch.rand(1, 2, 2, 2, 2), points=_Z(3, 5), weight=torch.zeros(2, 3, 3, 3, 3), bias=None)
        args.update(kw)
        return tuple(args.values())
    return bad(id, make, ops.gather_windows4d_linear, r"semcorr::gather_windows4d_linear: " + match)


def _with_grads(*ts):
    """Floating tensors require grad, the others (points, None) unchanged."""
    return tuple(t.requires_grad_() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in ts)


@functools.lru_cache(maxsize=None)
def _lin_points():
    p = linear_args(12, (1, 3, 3, 3, 4), C=3, w=3)[1]
    p[:-2, 0] = 0  # in the batch but for the last two: a batch index of -1 or 1 reads nothing, so no corr gradient
    p[1] = p[0]  # a repeated point
    return p


def _emu_linear(bias):
    g = gen(3)
    corr = torch.randn(2, 4, 3, 5, 4, generator=g, dtype=F64)
    pts = torch.stack([torch.randint(-1, 3, (20,), generator=g)] +
                      [torch.randint(-2, n + 2, (20,), generator=g) for n in corr.shape[1:]], 1)
    weight = torch.randn(5, 3, 3, 3, 3, generator=g, dtype=F64)
    return corr, pts, weight, torch.randn(5, generator=g, dtype=F64) if bias else None


def _lin_grad(bias):
    corr, _, weight, b = linear_args(12, (1, 3, 3, 3, 4), C=3, w=3)
    return grad_(corr, weight, *([b] if bias else []))


GATHER_WINDOWS4D_LINEAR = OpRow(
    "gather_windows4d_linear", double_backward=True,
    reference=[Case(f"{shape_id(s)}-M{M}-C{C}-w{w}-bias={bias}",
                    lambda d, s=s, M=M, C=C, w=w, bias=bias: linear_args(M, s, C, w, d)[:3 + bias],
                    ops.gather_windows4d_linear, lambda *a: reference.gather_windows4d_linear(*f64(*a)),
                    tol=(1e-5, 1e-5), tol64=(1e-12, 1e-12))  # 700 points: several tiles per task
               for s, M, C, w in [((2, 4, 5, 6, 3), 40, 7, 5), ((1, 1, 1, 1, 1), 3, 1, 3), ((1, 6, 6, 6, 6), 700, 32, 5),
                                  ((2, 3, 2, 4, 4), 9, 3, 1)] for bias in (True, False)],
    gradcheck=[Case(f"bias={bias}", lambda bias=bias: _lin_grad(bias),
                    lambda c, w, *b: ops.gather_windows4d_linear(c, _lin_points(), w, *b)) for bias in (True, False)],
    opcheck=[Case("bias", lambda: _with_grads(*linear_args(6, (1, 3, 3, 4, 3), dtype=F32)), S.gather_windows4d_linear.default),
        Case("no-bias", lambda: (*linear_args(6, (1, 3, 3, 4, 3), dtype=F32)[:3], None), S.gather_windows4d_linear.default)],
    compile=[Case("relu-sum", lambda: linear_args(6, (1, 3, 3, 4, 3), dtype=F32),
                  lambda c, p, w, b: ops.gather_windows4d_linear(c.relu(), p, w, b).sum(1), tol=TORCH_F32)],
    empty=[Case("M0", lambda: (lambda c, p, w, b: _with_grads(c, _Z(0, 5), w, b))(*linear_args(1, (1, 2, 2, 2, 2))),
                ops.gather_windows4d_linear, check=out_shapes(lambda c, p, w, b: (0, 4))),
           Case("C0", lambda: (lambda c, p, w, b: (c, points(3, c.shape), w[:0], b[:0]))(*linear_args(1, (1, 2, 2, 2, 2))),
                ops.gather_windows4d_linear, check=out_shapes(lambda c, p, w, b: (3, 0))),
           Case("C0-backward", lambda: (lambda c, p, w, b: _with_grads(c, points(3, c.shape), w[:0].clone(), b[:0].clone()))(
               *linear_args(1, (1, 2, 2, 2, 2))), ops.gather_windows4d_linear, check=out_shapes(lambda c, p, w, b: (3, 0)))],
    bad_input=[
        _lin_bad("weight-4d", r"`weight` must be a 5-D tensor \(C, w, w, w, w\)", weight=torch.zeros(2, 3, 3, 3)),
        _lin_bad("weight-sides", r"`weight` must be \(C, w, w, w, w\) with one window side w", weight=torch.zeros(2, 3, 3, 5, 3)),
        _lin_bad("even-window", r"`window` must be odd", weight=torch.zeros(2, 4, 4, 4, 4)),
        _lin_bad("dtype", r"`corr` and `weight` must have the same dtype", weight=torch.zeros(2, 3, 3, 3, 3, dtype=F64)),
        _lin_bad("bias", r"`bias` must be \(C\) = \(2\), got shape \[3\]", bias=torch.zeros(3)),
        _lin_bad("points", r"`points` must be a 2-D tensor \(M, 5\)", points=_Z(3, 4))],
    # the launch sequence: the gather kernel, then a GEMM (cuBLAS on a GPU, the CPU BLAS under the emulator)
    emu=[Case(f"bias={bias}", lambda bias=bias: _emu_linear(bias), lambda O, *a: O.gather_windows4d_linear(*a),
              tol=(1e-12, 1e-12)) for bias in (True, False)],
    emu_empty=[Case("M0", lambda: (rnd(1, 2, 2, 2, 2), _Z(0, 5), rnd(4, 3, 3, 3, 3), None),
                    lambda O, *a: O.gather_windows4d_linear(*a), check=out_shapes(lambda *a: (0, 4)))],
    emu_bad_input=[bad("even-window", lambda: (rnd(1, 2, 2, 2, 2), _Z(3, 5), rnd(2, 4, 4, 4, 4), None),
                       lambda O, *a: O.gather_windows4d_linear(*a), r"`window` must be odd")],
)


# ---- patchmatch_select ------------------------------------------------------------------------------------------
def select_inputs(B=2, Hs=3, Ws=4, N=9, seed=0, dtype=F32, ties=False):
    g = gen(seed)
    cand = torch.randint(0, 20, (B, Hs, Ws, N, 2), generator=g)
    scores = (torch.randint(0, 3, (B, Hs, Ws, N), generator=g).to(dtype) if ties
              else torch.randn(B, Hs, Ws, N, generator=g, dtype=dtype))
    valid = torch.rand(B, Hs, Ws, N, generator=g) < 0.7
    return cand, scores, valid


def _select_empty_check(k):
    def check(outs, inputs):
        m, s, i = outs
        B, Hs, Ws, N = inputs[1].shape
        assert m.shape == (B, Hs, Ws, k, 2) and s.shape == i.shape == (B, Hs, Ws, k)
        if N == 0 and k:
            assert (i == -1).all() and (s == float("-inf")).all()
    return check


def _sel_bad(id, args, match):
    return bad(id, lambda: args(*select_inputs()), ops.patchmatch_select, match)


PATCHMATCH_SELECT = OpRow(
    "patchmatch_select",
    reference=[Case(f"k{k}-ties={ties}", lambda d, k=k, ties=ties: (*select_inputs(dtype=d, ties=ties), k),
                    lambda c, s, v, k: ops.patchmatch_select(c, s, v, k, return_indices=True),
                    lambda c, s, v, k: reference.patchmatch_select(c, f64(s), v, k, return_indices=True), tol=None)
               for k in (1, 3, 9, 12) for ties in (False, True)],
    gradcheck=[Case("k3", lambda: grad_(select_inputs(dtype=F64)[1]),
                    lambda x: ops.patchmatch_select(select_inputs()[0], x, select_inputs()[2], 3)[1].clamp(-1e3, 1e3))],
    # test_aot_dispatch_dynamic is left out: its harness sums all outputs into one accumulator starting with the
    # first (int64) output and then fails to add the float scores; the compiled backward covers AOT autograd.
    opcheck=[Case("k2", lambda: (lambda c, s, v: (c, grad_(s)[0], v, 2))(*select_inputs()), S.patchmatch_select.default,
                  opts=dict(test_utils=("test_schema", "test_autograd_registration", "test_faketensor")))],
    compile=[Case("exp-sum-backward", lambda: (lambda c, s, v: (c, grad_(s)[0], v))(*select_inputs()),
                  lambda c, x, v: ops.patchmatch_select(c, x, v, 2)[1].exp().sum(),
                  tol=TORCH_F32, opts=dict(backend="aot_eager"))],
    empty=[Case(f"{shape_id(s)}-k{k}", lambda s=s: (_Z(*s, 2), torch.zeros(s), torch.ones(s, dtype=torch.bool)),
                lambda c, sc, v, k=k: ops.patchmatch_select(c, sc, v, k, return_indices=True), check=_select_empty_check(k))
           for s, k in [((0, 2, 2, 3), 2), ((1, 2, 2, 0), 2), ((1, 2, 2, 3), 0)]],
    bad_input=[
        _sel_bad("candidates-4d", lambda c, s, v: (c[..., 0], s, v, 1), r"`candidates` must be a 5-D tensor \(B, Hs, Ws, N, 2\)"),
        _sel_bad("candidates-float", lambda c, s, v: (c.float(), s, v, 1), r"`candidates` must be int64"),
        _sel_bad("scores-shape", lambda c, s, v: (c, s[..., :2], v, 1), r"`scores` must have shape \[2, 3, 4, 9\] \(B, Hs, Ws, N\)"),
        _sel_bad("scores-int", lambda c, s, v: (c, s.long(), v, 1), r"`scores` must be a floating tensor"),
        _sel_bad("valid-int", lambda c, s, v: (c, s, v.int(), 1), r"`valid` must be a bool tensor, got Int"),
        _sel_bad("k", lambda c, s, v: (c, s, v, -1), r"`k` must be >= 0, got -1")],
    emu=[Case("k3", lambda: select_inputs(B=1, dtype=F64), lambda O, c, s, v: O.patchmatch_select(c, s, v, 3), tol=None)],
    emu_empty=[Case("N0", lambda: (_Z(1, 2, 2, 0, 2), torch.zeros(1, 2, 2, 0, dtype=F64), torch.ones(1, 2, 2, 0, dtype=torch.bool)),
                    lambda O, c, s, v: O.patchmatch_select(c, s, v, 2),
                    check=lambda o, i: _select_empty_check(2)(o, (None, i[1])))],
    emu_bad_input=[bad("k", lambda: select_inputs(), lambda O, c, s, v: O.patchmatch_select(c, s, v, -1),
                       r"`k` must be >= 0, got -1")],
)

ROWS = [PATCHMATCH_PROPAGATE, GATHER_WINDOWS4D, GATHER_WINDOWS4D_POINTS, GATHER_WINDOWS4D_LINEAR, PATCHMATCH_SELECT]
