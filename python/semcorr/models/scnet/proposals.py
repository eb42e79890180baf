"""Region proposals for SCNet.

The published pipeline uses precomputed Randomized Prim's proposals (Manen, Guillaumin, Van Gool, ICCV 2013;
``smanenfr/rp``, configuration ``rp_4segs``) through SCNet's ``utils/object-proposal/RP.m``: RP is asked for
``50 x n`` boxes, near-duplicates are removed (``q = 1``), boxes touching the 1 % image margin are dropped
unless they span the whole image (``remove_boundary_box``), and ``n`` boxes are drawn uniformly *with
replacement* (``randi``) when more remain (n = 500 for training, 1000 for the PCK evaluation).

:func:`randomized_prim_boxes` implements that pipeline with scikit-image's Felzenszwalb segmentation (the
algorithm RP bundles: sigma 0.8, c 100, min size 100) in RP's four colour spaces (LAB, opponent, rg, HSV, with
RP's 8-bit conversions), RP's superpixel graph (similarity ``1 / (1 + exp(w . [1, size, border, colour]))``
with the VOC07-trained weights of ``rp_4segs``: common border over perimeter, 16^3-bin LAB histogram
intersection, 1 - both normalised areas; edges <= 5e-5 dropped) and the randomized Prim's growth (random seed
superpixel, frontier edges sampled in proportion to their similarity, stop when
``alpha(group area) + 1 - s > E0 ~ U(0, 2)``). Deviations, all unavoidable here: random numbers are NumPy's,
not C ``rand()`` (RP.m seeds from the clock anyway); the learned size term ``alpha`` (a 65536-entry table
shipped with RP, ``config/alpha/alpha_voc07.dat``) is not redistributed with this package: pass its path as
``alpha`` (or set ``SEMCORR_RP_ALPHA``) for the published table, otherwise :func:`default_alpha`, our
substitute ``min(1, sqrt(area))``, is used and :func:`rp_alpha_is_published` says so.

Substitutes (named options, not the published method): :func:`sliding_window_boxes` and
:func:`felzenszwalb_boxes`.
"""
import math
import os
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["randomized_prim_boxes", "load_rp_alpha", "default_alpha", "rp_alpha_is_published",
           "remove_boundary_boxes", "sliding_window_boxes", "felzenszwalb_boxes", "PROPOSALS"]

#: names accepted by ``SCNet(proposals=...)`` (or pass boxes)
PROPOSALS = ("rp", "sliding", "felzenszwalb")

# rp_4segs (trained on VOC07): bias, common border, LAB colour histogram, size
_W_BIAS, _W_BORDER, _W_HIST, _W_SIZE = 3.0017, -1.0029, -2.6864, -2.3655
_SP_SIGMA, _SP_C, _SP_MIN_SIZE = 0.8, 100, 100
_COLORSPACES = ("lab", "opponent", "rg", "hsv")


def default_alpha() -> np.ndarray:
    """Our substitute for RP's learned size term (65536 entries over the group's area fraction)."""
    return np.minimum(1.0, np.sqrt(np.arange(65536) / 65535.0))


def load_rp_alpha(path: "str | os.PathLike") -> np.ndarray:
    """RP's ``alpha_voc07.dat`` (65536 comma-separated values)."""
    a = np.loadtxt(os.fspath(path), delimiter=",", dtype=np.float64).reshape(-1)
    if a.size != 65536:
        raise ValueError("alpha file %s must hold 65536 values (RP's alpha_voc07.dat), got %d" % (path, a.size))
    return a


def _resolve_alpha(alpha):
    if alpha is None:
        alpha = os.environ.get("SEMCORR_RP_ALPHA") or None
    if alpha is None:
        return default_alpha()
    if isinstance(alpha, (str, os.PathLike)):
        return load_rp_alpha(alpha)
    a = np.asarray(alpha, dtype=np.float64).reshape(-1)
    if a.size != 65536:
        raise ValueError("alpha must have 65536 entries, got %d" % a.size)
    return a


def rp_alpha_is_published(alpha=None) -> bool:
    """Whether RP would use a given/``SEMCORR_RP_ALPHA`` alpha table (else our substitute)."""
    return alpha is not None or bool(os.environ.get("SEMCORR_RP_ALPHA"))


# ---- RP's 8-bit colour conversions (image.h) ---------------------------------------------------------------
def _cround(x):
    """C's round (half away from zero), not NumPy's half-to-even."""
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))


def _rp_lab(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    x = (0.412453 * c[..., 0] + 0.357580 * c[..., 1] + 0.180423 * c[..., 2]) / 0.950456
    y = 0.212671 * c[..., 0] + 0.715160 * c[..., 1] + 0.072169 * c[..., 2]
    z = (0.019334 * c[..., 0] + 0.119193 * c[..., 1] + 0.950227 * c[..., 2]) / 1.088754

    def f(t):
        return np.where(t > 0.008856, np.power(np.maximum(t, 0), 0.33333333), 7.787 * t + 0.137931)

    L = np.where(y > 0.008856, 116.0 * np.power(np.maximum(y, 0), 0.333333333) - 16.0, 903.3 * y) * 2.55
    A = 500.0 * (f(x) - f(y)) + 128.0  # RP adds an uninitialised `delta` here; taken as 0
    B = 200.0 * (f(y) - f(z)) + 128.0
    return np.clip(_cround(np.stack([L, A, B], -1)), 0, 255).astype(np.uint8)


def _rp_colorspace(rgb: np.ndarray, space: str) -> np.ndarray:
    c = rgb.astype(np.float64)
    if space == "lab":
        return _rp_lab(rgb)
    if space == "rg":
        s = c.sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r, g = np.nan_to_num(255.0 * c[..., 0] / s), np.nan_to_num(255.0 * c[..., 1] / s)
        return np.stack([r, g, s / 3.0], -1).astype(np.uint8)
    if space == "opponent":
        o = np.stack([(c[..., 0] - c[..., 1]) / math.sqrt(2), (c[..., 0] + c[..., 1] - 2 * c[..., 2]) / math.sqrt(6),
                      c.sum(-1) / math.sqrt(3)], -1)
        lo, hi = o.reshape(-1, 3).min(0), o.reshape(-1, 3).max(0)
        return ((o - lo) / np.where(hi > lo, hi - lo, 1.0) * 255.0).astype(np.uint8)
    if space == "hsv":
        from skimage.color import rgb2hsv

        return np.clip(_cround(rgb2hsv(rgb) * 255.0), 0, 255).astype(np.uint8)
    raise ValueError("unknown colour space %r" % (space,))


# ---- superpixel graph (seg_image.h, graph.h, nhist3.h) -----------------------------------------------------
def _superpixel_graph(seg: np.ndarray, lab: np.ndarray):
    H, W = seg.shape
    n = int(seg.max()) + 1
    area = np.bincount(seg.ravel(), minlength=n) / float(H * W)
    ys, xs = np.indices(seg.shape)
    bbox = np.stack([np.full(n, W), np.full(n, H), np.zeros(n, int), np.zeros(n, int)], 1)
    np.minimum.at(bbox[:, 0], seg.ravel(), xs.ravel())
    np.minimum.at(bbox[:, 1], seg.ravel(), ys.ravel())
    np.maximum.at(bbox[:, 2], seg.ravel(), xs.ravel())
    np.maximum.at(bbox[:, 3], seg.ravel(), ys.ravel())
    # co-occurrence of interior pixels with their 8 neighbours, symmetrised with integer halving
    co = np.zeros((n, n), dtype=np.int64)
    centre = seg[1:-1, 1:-1].ravel()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                nb = seg[1 + dy:H - 1 + dy, 1 + dx:W - 1 + dx].ravel()
                np.add.at(co, (centre, nb), 1)
    sym = (co + co.T) // 2
    np.fill_diagonal(sym, np.diag(co))
    perimeter = sym.sum(1) - np.diag(sym)
    # 16^3 LAB histograms (bin = floor(v / 16))
    bins = (lab.astype(np.int64) // 16).clip(max=15)
    flat = (bins[..., 0] * 16 + bins[..., 1]) * 16 + bins[..., 2]
    hist = np.zeros((n, 4096))
    np.add.at(hist, (seg.ravel(), flat.ravel()), 1.0)
    hist /= hist.sum(1, keepdims=True)
    i, j = np.nonzero(np.tril(sym, -1) > 0)
    s_size = 1.0 - area[i] - area[j]
    s_border = np.maximum(sym[i, j] / np.maximum(perimeter[i], 1), sym[i, j] / np.maximum(perimeter[j], 1))
    s_hist = np.minimum(hist[i], hist[j]).sum(1)
    s = 1.0 / (1.0 + np.exp(_W_BIAS + _W_SIZE * s_size + _W_BORDER * s_border + _W_HIST * s_hist))
    keep = s > 5e-5
    return area, bbox, i[keep], j[keep], s[keep]


def _randomized_prim(area, bbox, ei, ej, e, n_runs: int, alpha: np.ndarray, rng: np.random.Generator):
    """Vectorised over runs: each run grows one group of superpixels; returns (n_runs, 4) boxes, 0-based."""
    n = len(area)
    R = int(n_runs)
    # incident edges of each superpixel (padded with -1): a joining superpixel toggles its edges in and out
    # of the frontier (an edge is in the frontier iff exactly one end is in the group)
    deg = np.bincount(np.concatenate([ei, ej]), minlength=n)
    inc = np.full((n, max(int(deg.max()) if len(deg) else 0, 1)), -1, dtype=np.int64)
    fill = np.zeros(n, dtype=np.int64)
    for k, (a, b) in enumerate(zip(ei.tolist(), ej.tolist())):
        inc[a, fill[a]], inc[b, fill[b]] = k, k
        fill[a] += 1
        fill[b] += 1
    group = np.zeros((R, n), dtype=bool)
    front = np.zeros((R, len(e)), dtype=bool)

    def join(runs, nodes):
        group[runs, nodes] = True
        cols = inc[nodes]
        ok = cols >= 0
        r = np.broadcast_to(runs[:, None], cols.shape)[ok]
        front[r, cols[ok]] ^= True

    seed = rng.integers(0, n, R)
    join(np.arange(R), seed)
    acc = area[seed].copy()
    e0 = 2.0 * rng.random(R)
    active = np.full(R, n > 1)
    while active.any():
        rows = np.nonzero(active)[0]
        w = front[rows] * e[None, :]  # frontier edges, weighted by similarity
        total = w.sum(1)
        empty = total <= 0
        active[rows[empty]] = False
        rows, w, total = rows[~empty], w[~empty], total[~empty]
        if rows.size == 0:
            break
        pick = (np.cumsum(w, 1) > (rng.random(rows.size) * total)[:, None]).argmax(1)
        a, b = ei[pick], ej[pick]
        nxt = np.where(group[rows, a], b, a)
        stop = alpha[np.floor(acc[rows] * 65535 + 0.5).astype(np.int64).clip(0, 65535)] + 1.0 - e[pick] > e0[rows]
        active[rows[stop]] = False
        grow, nxt = rows[~stop], nxt[~stop]
        join(grow, nxt)
        acc[grow] += area[nxt]
        active[grow[group[grow].all(1)]] = False
    boxes = np.empty((R, 4))
    for col in (0, 1):
        boxes[:, col] = np.where(group, bbox[None, :, col], np.iinfo(np.int64).max).min(1)
    for col in (2, 3):
        boxes[:, col] = np.where(group, bbox[None, :, col], -1).max(1)
    return boxes


def remove_boundary_boxes(boxes: np.ndarray, hw) -> np.ndarray:
    """SCNet's ``remove_boundary_box`` on 0-based boxes: the mask of boxes kept."""
    H, W = hw
    b = np.asarray(boxes, dtype=np.float64) + 1
    inside = (b[:, 0] > W * 0.01) & (b[:, 2] < W * 0.99) & (b[:, 1] > H * 0.01) & (b[:, 3] < H * 0.99)
    whole = (b[:, 0] < W * 0.01) & (b[:, 2] > W * 0.99) & (b[:, 1] < H * 0.01) & (b[:, 3] > H * 0.99)
    return inside | whole


def randomized_prim_boxes(img: np.ndarray, n_proposals: int = 1000, seed: Optional[int] = None, alpha=None,
                          colorspaces: Sequence[str] = _COLORSPACES) -> torch.Tensor:
    """SCNet's RP proposals of one image: (n, 4) float32 boxes (x0, y0, x1, y1), 0-based inclusive pixels.

    Args:
        img: (H, W, 3) RGB, uint8 or float in [0, 1].
        n_proposals: boxes returned (SCNet: 500 train, 1000 evaluation); drawn with replacement, as released.
        seed: NumPy seed (``None``: RP.m's default, a seed from the image content, so a given image always
            gets the same boxes).
        alpha: RP's size term: a path to ``alpha_voc07.dat``, an array, or None (``SEMCORR_RP_ALPHA``, else
            our substitute :func:`default_alpha`).
    """
    from skimage.segmentation import felzenszwalb

    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("img must be (H, W, 3), got %s" % (img.shape,))
    rgb = img if img.dtype == np.uint8 else np.clip(_cround(img.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    H, W = rgb.shape[:2]
    table = _resolve_alpha(alpha)
    rng = np.random.default_rng(int(rgb.astype(np.int64).sum()) % (2 ** 31 - 1) if seed is None else seed)
    lab = _rp_lab(rgb)
    runs = int(math.ceil(n_proposals * 50 / (len(colorspaces) * 0.8)))  # approxFinalNBoxes / (nSegs * 0.8)
    per_seg = []
    for space in colorspaces:
        seg = felzenszwalb(_rp_colorspace(rgb, space), scale=_SP_C, sigma=_SP_SIGMA, min_size=_SP_MIN_SIZE)
        per_seg.append(_randomized_prim(*_superpixel_graph(seg, lab), runs, table, rng))
    boxes = np.stack(per_seg, 1).reshape(-1, 4)  # RP.m interleaves the segmentations' boxes
    _, first = np.unique(boxes, axis=0, return_index=True)  # q = 1: exact duplicates, first occurrence kept
    boxes = boxes[np.sort(first)]
    boxes = boxes[remove_boundary_boxes(boxes, (H, W))]
    if len(boxes) == 0:  # nothing left (e.g. one superpixel): the whole image
        boxes = np.array([[0.0, 0.0, W - 1.0, H - 1.0]])
    if len(boxes) > n_proposals:
        boxes = boxes[rng.integers(0, len(boxes), n_proposals)]
    return torch.from_numpy(boxes.astype(np.float32))


# ---- substitutes (named options) ---------------------------------------------------------------------------
def sliding_window_boxes(H: int, W: int, scales=(0.2, 0.3, 0.45, 0.65), aspects=(0.5, 1.0, 2.0),
                         overlap: float = 0.5, device=None) -> torch.Tensor:
    """Our substitute: multi-scale sliding windows (box side ``s * min(H, W)``, aspect ``a = w / h``) on a
    regular grid with the given overlap, inside the image. (R, 4) float (x0, y0, x1, y1)."""
    out = []
    base = min(H, W)
    for s in scales:
        for a in aspects:
            bw, bh = s * base * math.sqrt(a), s * base / math.sqrt(a)
            if bw > W or bh > H:
                continue
            sx, sy = max(1.0, bw * (1 - overlap)), max(1.0, bh * (1 - overlap))
            nx, ny = int(math.floor((W - bw) / sx)) + 1, int(math.floor((H - bh) / sy)) + 1
            ox, oy = (W - bw - (nx - 1) * sx) / 2, (H - bh - (ny - 1) * sy) / 2
            for j in range(ny):
                for i in range(nx):
                    x0, y0 = ox + i * sx, oy + j * sy
                    out.append((x0, y0, x0 + bw - 1, y0 + bh - 1))
    return torch.tensor(out, dtype=torch.float32, device=device)


def felzenszwalb_boxes(img: np.ndarray, scales=(100, 300, 800), min_size: int = 50, max_boxes: int = 400):
    """Our substitute: bounding boxes of Felzenszwalb superpixels (scikit-image) at several scales,
    deduplicated, largest first. (R, 4) float (x0, y0, x1, y1), inclusive pixels."""
    from skimage.segmentation import felzenszwalb

    boxes = set()
    for sc in scales:
        seg = felzenszwalb(img, scale=sc, sigma=0.8, min_size=min_size)
        for lab in np.unique(seg):
            ys, xs = np.nonzero(seg == lab)
            boxes.add((float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())))
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0] + 1) * (b[3] - b[1] + 1))[:max_boxes]
    return torch.tensor(boxes, dtype=torch.float32)
