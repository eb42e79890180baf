"""SCNet's dense flow from region matches, as its released evaluation (``eva_PCK_SCNet_*.m``) forms it.

1. Each source proposal takes its best target proposal (``max`` over the row of the score matrix, first index
   on ties) and that score as confidence.
2. Source proposals in decreasing confidence (stable order) paint the pixels of their (rounded) box that no
   earlier proposal painted, with the box-to-box map: the 4 rounded target-box corners interpolated linearly
   over the source box (``scatteredInterpolant`` of 4 rectangle corners = this affine map). Boxes 1 pixel
   wide or tall paint nothing, as released.
3. Warped positions are rounded and clamped to the target image. Pixels no box painted hold NaN there, and
   MATLAB's ``min``/``max`` ignore NaN, so they become the target's bottom-right pixel (released behaviour,
   kept; their confidence is 0 so step 4 usually drops them).
4. One-to-one filtering: of all source pixels landing on one target pixel only the one with the highest
   confidence is kept (the first in row-major order on ties); the others become holes.
5. SD filtering (Ham et al., "Robust image filtering using joint static and dynamic guidance", ``sdfilter.m``)
   fills the holes and smooths the x and y offsets separately: 4-neighbour grid, static guidance = the
   network's *normalised* input image converted to CIE L*a*b* by the bundled ``colorspace.m`` (Rec. 709
   transfer curve, D65 white), lambda 20, sigma_g 30, sigma_u 15, 2 iterations, sparse data term.
6. The flow is ``round(offset + pixel)``; it is not clamped again.

Everything runs in float64 NumPy / SciPy sparse on the CPU (a sparse solve over the image's pixels).
"""
from typing import Tuple

import numpy as np

__all__ = ["paint_region_flow", "one_to_one", "sd_filter", "rgb_to_lab_colorspace", "flow_from_region_matches"]

#: sdfilter parameters of the released evaluation
SDF_LAMBDA, SDF_SIGMA_G, SDF_SIGMA_U, SDF_ITERATIONS = 20.0, 30.0, 15.0, 2


def _mround(x):
    """MATLAB ``round`` (half away from zero)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))


def paint_region_flow(scores: np.ndarray, src_boxes: np.ndarray, tgt_boxes: np.ndarray, src_hw):
    """Steps 1-2: per source pixel the warped target position (x, y), 1-based (NaN where no box painted),
    and the confidence of the box that painted it (0 elsewhere). Boxes are 0-based (x0, y0, x1, y1)."""
    H, W = int(src_hw[0]), int(src_hw[1])
    scores = np.asarray(scores, dtype=np.float64)
    best = scores.argmax(1)
    conf = scores[np.arange(len(scores)), best]
    order = np.argsort(-conf, kind="stable")
    A = np.asarray(src_boxes, dtype=np.float64) + 1
    B = np.asarray(tgt_boxes, dtype=np.float64) + 1
    X, Y = np.full((H, W), np.nan), np.full((H, W), np.nan)
    C = np.zeros((H, W))
    done = np.zeros((H, W), dtype=bool)
    for k in order:
        a, b = _mround(A[k]), _mround(B[best[k]])
        w, h = int(_mround(A[k, 2] - A[k, 0] + 1)), int(_mround(A[k, 3] - A[k, 1] + 1))
        r0, c0 = int(a[1]) - 1, int(a[0]) - 1
        check = done[max(r0, 0):max(int(a[3]), 0), max(c0, 0):max(int(a[2]), 0)]
        if check.size == 0 or check.all() or h < 2 or w < 2:
            continue
        xs = b[0] + np.arange(w) * (b[2] - b[0]) / (w - 1)
        ys = b[1] + np.arange(h) * (b[3] - b[1]) / (h - 1)
        # the released loop writes rows r0 .. r0 + h - 1 (pixels outside the image are dropped here)
        rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r0 + h, H), min(c0 + w, W)
        if rr1 <= rr0 or cc1 <= cc0:
            continue
        free = ~done[rr0:rr1, cc0:cc1]
        X[rr0:rr1, cc0:cc1][free] = np.broadcast_to(xs[None, cc0 - c0:cc1 - c0], free.shape)[free]
        Y[rr0:rr1, cc0:cc1][free] = np.broadcast_to(ys[rr0 - r0:rr1 - r0, None], free.shape)[free]
        C[rr0:rr1, cc0:cc1][free] = conf[k]
        done[rr0:rr1, cc0:cc1] |= free
    return X, Y, C


def one_to_one(X: np.ndarray, Y: np.ndarray, conf: np.ndarray, tgt_hw):
    """Steps 3-4: rounded, clamped (NaN -> bottom-right, as MATLAB's min/max) positions and the mask of the
    source pixels kept by the one-to-one filter. Returns (Xr, Yr, keep), 1-based."""
    Ht, Wt = int(tgt_hw[0]), int(tgt_hw[1])
    Xr = np.fmax(np.fmin(_mround(X), Wt), 1)
    Yr = np.fmax(np.fmin(_mround(Y), Ht), 1)
    tgt = ((Yr - 1) * Wt + (Xr - 1)).astype(np.int64).ravel()
    src = np.arange(tgt.size)
    order = np.lexsort((src, -conf.ravel(), tgt))  # by target, then highest confidence, then row-major order
    first = np.ones(order.size, dtype=bool)
    first[1:] = tgt[order[1:]] != tgt[order[:-1]]
    keep = np.zeros(tgt.size, dtype=bool)
    keep[order[first]] = True
    return Xr, Yr, keep.reshape(X.shape)


def rgb_to_lab_colorspace(img: np.ndarray) -> np.ndarray:
    """``colorspace('Lab<-', img)`` of the bundled colorspace.m for a double image (no /255 scaling): Rec. 709
    inverse transfer curve (real part of the power for negative values, as MATLAB), D65 white point."""
    img = np.asarray(img, dtype=np.float64)

    def inv_gamma(v):
        r = np.real(np.power(((v + 0.099) / 1.099).astype(np.complex128), 1 / 0.45))
        return np.where(r < 0.018, v / 4.5138, r)

    rgb = np.stack([inv_gamma(img[..., c]) for c in range(3)], -1)
    M = np.linalg.inv(np.array([[3.240479, -1.53715, -0.498535], [-0.969256, 1.875992, 0.041556],
                                [0.055648, -0.204043, 1.057311]]))
    xyz = rgb @ M.T / np.array([0.950456, 1.0, 1.088754])

    def f(t):
        return np.where(t < 0.008856, t * (841 / 108) + 4 / 29, np.real(np.power(t.astype(np.complex128), 1 / 3)))

    fx, fy, fz = f(xyz[..., 0]), f(xyz[..., 1]), f(xyz[..., 2])
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


def _normalize(d: np.ndarray) -> np.ndarray:
    """``normalize.m``: to [0, 1] by min/max; a constant vector keeps its value."""
    lo, hi = d.min(), d.max()
    if lo == hi:
        return d.copy()
    return (d - lo) / (hi - lo)


def _grid_edges(H: int, W: int):
    idx = np.arange(H * W).reshape(H, W)
    return (np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()]),
            np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()]))


def sd_filter(guide: np.ndarray, f: np.ndarray, mask: np.ndarray, lam: float = SDF_LAMBDA,
              sigma_g: float = SDF_SIGMA_G, sigma_u: float = SDF_SIGMA_U, iterations: int = SDF_ITERATIONS):
    """``sdfilter(g, ones, f, mask, 0, lam, sigma_g, sigma_u, itr, true)``: (H, W) solution of
    ``(C + lam L(g, u)) u = C f`` iterated with u's own guidance (C = diag(mask), L a 4-neighbour Laplacian
    with weights ``(exp(-sigma_g dg) + 1e-5) (exp(-sigma_u du) + 1e-5)``, distances min/max-normalised)."""
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import spsolve

    H, W = f.shape
    N = H * W
    e0, e1 = _grid_edges(H, W)
    vals = guide.reshape(N, -1) if guide.shape[-1] != 3 else rgb_to_lab_colorspace(guide).reshape(N, 3)
    wg = np.exp(-sigma_g * _normalize(np.sqrt(((vals[e0] - vals[e1]) ** 2).sum(1)))) + 1e-5
    m = mask.ravel().astype(np.float64)
    F = np.where(mask.ravel(), np.nan_to_num(f.ravel()), 0.0)
    u = np.ones(N)
    if not mask.any():
        raise ValueError("sd_filter: the mask keeps no pixel")
    for _ in range(iterations):
        wu = np.exp(-sigma_u * _normalize(np.abs(u[e0] - u[e1]))) + 1e-5
        w = wg * wu
        Wm = coo_matrix((np.concatenate([w, w]), (np.concatenate([e0, e1]), np.concatenate([e1, e0]))),
                        shape=(N, N)).tocsr()
        L = diags(np.asarray(Wm.sum(0)).ravel()) - Wm
        u = spsolve((diags(m) + lam * L).tocsc(), F)
    return u.reshape(H, W)


def flow_from_region_matches(scores: np.ndarray, src_boxes: np.ndarray, tgt_boxes: np.ndarray, src_guide: np.ndarray,
               tgt_hw: Tuple[int, int], sd: bool = True):
    """Steps 1-6. ``src_guide``: (H, W, 3) the network's normalised source image (the SD filter's guidance).
    Returns the per-pixel flow ``(H, W, 2)`` in 0-based target pixels (x, y) and the confidence ``(H, W)`` of
    each kept pixel's match (0 for filled holes). ``sd=False`` (our option) skips steps 4-5's filtering: every
    pixel keeps its painted, rounded, clamped position."""
    H, W = src_guide.shape[:2]
    X, Y, C = paint_region_flow(scores, src_boxes, tgt_boxes, (H, W))
    Xr, Yr, keep = one_to_one(X, Y, C, tgt_hw)
    px = np.arange(1, W + 1)[None, :].repeat(H, 0).astype(np.float64)
    py = np.arange(1, H + 1)[:, None].repeat(W, 1).astype(np.float64)
    if sd:
        vx = sd_filter(src_guide, np.where(keep, Xr - px, np.nan), keep)
        vy = sd_filter(src_guide, np.where(keep, Yr - py, np.nan), keep)
    else:  # our option: no filtering, every pixel keeps its painted (rounded, clamped) position
        vx, vy = Xr - px, Yr - py
    flow = np.stack([_mround(vx + px), _mround(vy + py)], -1) - 1
    return flow, np.where(keep, C, 0.0)
