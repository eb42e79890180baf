"""Op-contract rows (tests/op_contract.py) of the Hough ops: hough_match, hough_vote."""

import torch
from op_contract import F32, F64, Case, OpRow, bad, gen, grad_, out_shapes, rnd, shape_id, hough_inputs, vote_inputs

from semcorr_ext import ops, reference

S = torch.ops.semcorr
I64 = torch.int64
SIZES = ((50, 40), (60, 30))


# ---- hough_match ------------------------------------------------------------------------------------------------
def hm(ncells=8192, smooth=True, sizes=SIZES):
    return lambda a, sc, tc: ops.hough_match(a, sc, tc, *sizes, ncells=ncells, smooth=smooth)


def hm_ref(ncells=8192, smooth=True):
    # the app in float64; centres as given (the op bins them in their own dtype)
    return lambda a, sc, tc: reference.hough_match(a.double(), sc, tc, *SIZES, ncells=ncells, smooth=smooth)


def hm_fwd_bwd(O, app, sc, tc):
    args = ([50.0, 40.0], [60.0, 30.0], 64, True)
    out = O.hough_match(app, sc, tc, *args)
    return out, O.hough_match_backward(rnd(*app.shape, seed=2), app, sc, tc, *args)


def _emu_hough(B, Ns, Nt, dtype=F64):
    """The emulator tests' inputs: centres float32 inside (50, 40) x (60, 30) images."""
    g = gen(0)
    app = torch.rand(B, Ns, Nt, generator=g, dtype=F64).to(dtype)
    return app, torch.rand(B, Ns, 2, generator=g) * torch.tensor([50.0, 40.0]), \
        torch.rand(B, Nt, 2, generator=g) * torch.tensor([60.0, 30.0])


A, SC, TC = hough_inputs(2, 4, 5)


def _hm_bad(id, args, match, error=RuntimeError, **kw):
    return bad(id, lambda: args, lambda *a: ops.hough_match(*a, **kw), match, error)


HOUGH_MATCH = OpRow(
    "hough_match",
    reference=[Case(f"{shape_id(s)}-ncells{n}-smooth={sm}", lambda d, s=s: hough_inputs(*s, dtype=d), hm(n, sm),
                    hm_ref(n, sm)) for sm in (True, False)
               for s, n in [((2, 37, 41), 64), ((1, 1, 1), 8192), ((3, 5, 70), 17), ((1, 64, 9), 1)]],
    grad_reference=[Case("ncells30", lambda: (lambda a, sc, tc: (a.requires_grad_(), sc, tc))(
        *hough_inputs(2, 9, 11, dtype=F64, cdtype=F64)), hm(30), hm_ref(30), tol=(1e-10, 1e-12))],
    gradcheck=[Case(f"smooth={sm}", lambda: grad_(hough_inputs(2, 6, 5, dtype=F64, cdtype=F64)[0]),
                    lambda a, sm=sm: hm(12, sm)(a, *hough_inputs(2, 6, 5, dtype=F64, cdtype=F64)[1:]))
               for sm in (True, False)],
    opcheck=[Case(f"smooth={sm}", lambda sm=sm: (grad_(hough_inputs(2, 5, 6)[0])[0], *hough_inputs(2, 5, 6)[1:],
                                                 [50.0, 40.0], [60.0, 30.0, 61.0, 33.0], 20, sm), S.hough_match.default)
             for sm in (True, False)],
    compile=[Case("sum", lambda: hough_inputs(2, 5, 6), lambda a, s, t: hm(20)(a, s, t).sum(dim=2),
                  opts=dict(backend="aot_eager")),
             Case("inductor", lambda: hough_inputs(1, 4, 6), lambda a, s, t: hm(20)(a, s, t) * 2.0)],
    empty=[Case(shape_id(s), lambda s=s: (lambda a, sc, tc: (a.requires_grad_(), sc, tc))(*hough_inputs(*s)), hm(),
                check=out_shapes(lambda a, sc, tc: a.shape)) for s in [(0, 3, 4), (2, 0, 4), (2, 3, 0)]],
    bad_input=[
        _hm_bad("app-2d", (A[0], SC, TC, (5, 4), (6, 3)), r"`app` must be a 3-D tensor \(B, Ns, Nt\), got shape \[4, 5\]"),
        _hm_bad("app-int", (A.int(), SC, TC, (5, 4), (6, 3)), r"`app` must be a floating tensor"),
        _hm_bad("src-centers", (A, SC[:, :3], TC, (5, 4), (6, 3)),
                r"`src_centers` must have shape \(B, Ns, 2\) = \[2, 4, 2\].*got \[2, 3, 2\]"),
        _hm_bad("tgt-centers", (A, SC, TC[..., :1], (5, 4), (6, 3)), r"`tgt_centers` must have shape \(B, Nt, 2\)"),
        _hm_bad("int-centers", (A, SC.int(), TC.int(), (5, 4), (6, 3)), r"`src_centers` must be a float32/float64 tensor"),
        _hm_bad("centers-dtype", (A, SC, TC.double(), (5, 4), (6, 3)),
                r"`src_centers` and `tgt_centers` must have the same dtype"),
        _hm_bad("src-size-6", (A, SC, TC, (5, 4, 3, 2, 1, 0), (6, 3)), r"`src_size` must hold 2 floats"),
        _hm_bad("src-size-negative", (A, SC, TC, (5, -4), (6, 3)), r"`src_size` values must be finite and > 0"),
        _hm_bad("tgt-size-inf", (A, SC, TC, (5, 4), (6, float("inf"))), r"`tgt_size` values must be finite"),
        _hm_bad("ncells", (A, SC, TC, (5, 4), (6, 3)), r"`ncells` must be >= 1, got 0", ncells=0),
        _hm_bad("odd-size-list", (A, SC, TC, (5, 4, 3), (6, 3)), r"`src_size` must be \(W, H\)", ValueError)],
    emu=[Case("fwd-bwd", lambda: _emu_hough(2, 5, 7), hm_fwd_bwd, tol=(1e-12, 1e-13))] + [
        Case(f"float32-{Ns}x{Nt}-ncells{n}", lambda Ns=Ns, Nt=Nt: _emu_hough(1, Ns, Nt, F32),
             lambda O, a, s, t, n=n: O.hough_match(a, s, t, [50.0, 40.0], [60.0, 30.0], n, True))
        for Ns, Nt, n in [(1, 1, 8192), (30, 12, 64)]],
    emu_empty=[Case("Ns0", lambda: _emu_hough(2, 0, 3), lambda O, a, s, t: O.hough_match(a, s, t, [5.0, 4.0], [6.0, 3.0],
                                                                                          10, True),
                    check=out_shapes(lambda a, s, t: (2, 0, 3)))],
    emu_bad_input=[bad("ncells", lambda: _emu_hough(1, 3, 4),
                       lambda O, a, s, t: O.hough_match(a, s, t, [5.0, 4.0], [6.0, 3.0], 0, True), "`ncells` must be >= 1")],
)


# ---- hough_vote -------------------------------------------------------------------------------------------------
KERNELS = {1: torch.tensor([0.25, 0.5, 0.25]), 2: torch.rand(3, 5, generator=gen(3)), 3: torch.rand(3, 3, 1, generator=gen(4))}


def hv(nbins, kernel=None):
    return lambda a, b: ops.hough_vote(a, b, nbins, smooth_kernel=kernel)


def _no_vote_is_zero(outs, inputs):
    assert torch.all(outs[0][inputs[1] < 0] == 0)


def hv_fwd_bwd(O, app, bins, k):
    out = O.hough_vote(app, bins, [6, 7], k)
    return out, O.hough_vote_backward(rnd(*app.shape, seed=2), app, bins, [6, 7], k)


APP, BINS = vote_inputs(2, 3, 4, (5,))


def _hv_bad(id, args, match, **kw):
    return bad(id, lambda: args, lambda *a: ops.hough_vote(*a, **kw), match)


HOUGH_VOTE = OpRow(
    "hough_vote",
    reference=[Case(f"{shape_id(nb)}-smooth={sm}", lambda d, nb=nb: vote_inputs(2, 13, 17, nb, dtype=d),
                    hv(nb, KERNELS[len(nb)] if sm else None),
                    lambda a, b, nb=nb, sm=sm: reference.hough_vote(a.double(), b, nb, smooth_kernel=KERNELS[len(nb)]
                                                                    if sm else None), check=_no_vote_is_zero)
               for nb in [(7,), (4, 6), (3, 4, 5), (1,)] for sm in (False, True)],
    grad_reference=[Case("2d-kernel", lambda: (lambda a, b: (a.requires_grad_(), b))(*vote_inputs(2, 7, 6, (3, 5), F64)),
                         hv((3, 5), KERNELS[2].double()),
                         lambda a, b: reference.hough_vote(a, b, (3, 5), smooth_kernel=KERNELS[2].double()),
                         tol=(1e-10, 1e-12))],
    gradcheck=[Case(f"{shape_id(nb)}-kernel={k}", lambda nb=nb: grad_(vote_inputs(2, 5, 4, nb, F64)[0]),
                    lambda a, nb=nb, k=k: hv(nb, KERNELS[len(nb)].double() if k else None)(a, vote_inputs(2, 5, 4, nb)[1]))
               for nb in [(6,), (3, 4), (2, 3, 3)] for k in (True, False)],
    opcheck=[Case(f"kernel={k}", lambda k=k: (grad_(vote_inputs(2, 4, 5, (3, 4))[0])[0], vote_inputs(2, 4, 5, (3, 4))[1],
                                              [3, 4], KERNELS[2] if k else None), S.hough_vote.default)
             for k in (False, True)],
    compile=[Case("2d-kernel-sum", lambda: vote_inputs(2, 4, 5, (3, 4)), lambda a, b: hv((3, 4), KERNELS[2])(a, b).sum(dim=1),
                  opts=dict(backend="aot_eager"))],
    empty=[Case(shape_id(s), lambda s=s: (torch.rand(s, requires_grad=True), torch.zeros(s, dtype=I64)), hv((4,)),
                check=out_shapes(lambda a, b: a.shape)) for s in [(0, 2, 3), (2, 0, 3), (2, 3, 0)]],
    bad_input=[
        _hv_bad("bins-shape", (APP, BINS[0], (5,)), r"`bins` must have the shape of `app` \[2, 3, 4\], got \[3, 4\]"),
        _hv_bad("bins-float", (APP, BINS.float(), (5,)), r"`bins` must be an int64 \(or int32\) tensor"),
        _hv_bad("nbins-4d", (APP, BINS, (5, 1, 1, 1)), r"`nbins` must hold 1 to 3 sizes"),
        _hv_bad("nbins-0", (APP, BINS, (5, 0)), r"`nbins` sizes must be >= 1"),
        _hv_bad("bins-above", (APP, BINS, (4,)), r"`bins` must lie in \[-1, prod\(nbins\)\) = \[-1, 4\), got values in \[-1, 4\]"),
        _hv_bad("bins-below", (APP, BINS - 1, (5,)), r"`bins` must lie in \[-1, prod\(nbins\)\)"),
        _hv_bad("kernel-dims", (APP, BINS, (5,)), r"`smooth_kernel` must have len\(nbins\) = 1 dims",
                smooth_kernel=torch.ones(3, 3)),
        _hv_bad("kernel-even", (APP, BINS, (5,)), r"`smooth_kernel` sizes must be odd", smooth_kernel=torch.ones(4)),
        _hv_bad("kernel-int", (APP, BINS, (5,)), r"`smooth_kernel` must be a floating",
                smooth_kernel=torch.ones(3, dtype=I64)),
        _hv_bad("app-int", (APP.long(), BINS, (5,)), r"`app` must be a floating tensor")],
    emu=[Case("fwd-bwd", lambda: (*vote_inputs(1, 5, 7, (6, 7), F64), torch.rand(3, 3, generator=gen(1), dtype=F64)),
              hv_fwd_bwd, tol=(1e-12, 1e-13))],
    emu_empty=[Case("Ns0", lambda: (torch.rand(1, 0, 3, dtype=F64), torch.zeros(1, 0, 3, dtype=I64)),
                    lambda O, a, b: O.hough_vote(a, b, [4], None), check=out_shapes(lambda a, b: a.shape))],
    emu_bad_input=[bad("bins-above", lambda: (torch.rand(1, 2, 3), torch.full((1, 2, 3), 7)),
                       lambda O, a, b: O.hough_vote(a, b, [5], None), r"`bins` must lie in \[-1, prod\(nbins\)\)")],
)


ROWS = [HOUGH_MATCH, HOUGH_VOTE]
