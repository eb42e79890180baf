"""Pictures of matches (matplotlib, no display needed)."""
from typing import Optional, Sequence

import numpy as np

__all__ = ["draw_matches", "to_numpy_image", "side_by_side"]


def to_numpy_image(img) -> np.ndarray:
    """(H, W, 3) / (3, H, W) / (1, 3, H, W), numpy or torch, uint8 or float in [0, 1] -> (H, W, 3) float."""
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    a = np.asarray(img)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError("draw one pair at a time, got a batch of %d images" % a.shape[0])
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    return np.clip(a, 0.0, 1.0)


def side_by_side(a: np.ndarray, b: np.ndarray, gap: int = 0, dtype=np.float64) -> tuple:
    """(canvas, offset): images (H, W, 3) ``a`` and ``b`` top-aligned on one white canvas, ``gap`` columns
    apart; ``offset`` is the x of ``b``'s first column (add it to ``b``'s x coordinates)."""
    off = a.shape[1] + gap
    canvas = np.ones((max(a.shape[0], b.shape[0]), off + b.shape[1], 3), dtype=dtype)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], off:] = b
    return canvas, off


def _points(kps) -> np.ndarray:
    if kps is None:
        return None
    if hasattr(kps, "detach"):
        kps = kps.detach().cpu().numpy()
    p = np.asarray(kps, dtype=np.float64)
    if p.ndim == 3:
        if p.shape[0] != 1:
            raise ValueError("draw one pair at a time, got keypoints for a batch of %d" % p.shape[0])
        p = p[0]
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError("keypoints must be (N, 2) as (x, y), got shape %s" % (p.shape,))
    return p


def draw_matches(src_img, tgt_img, src_kps, tgt_kps, correct: Optional[Sequence[bool]] = None,
                 out: Optional[str] = None, *, gt_kps=None, title: Optional[str] = None, dpi: int = 100,
                 linewidth: float = 1.0):
    """Draw the source and target images side by side with a line from each source keypoint to its match.

    Args:
        src_img, tgt_img: images ((H, W, 3), (3, H, W) or (1, 3, H, W); numpy or torch; uint8 or [0, 1]).
        src_kps, tgt_kps: (N, 2) (or (1, N, 2)) pixel coordinates (x, y) in each image; rows with a negative
            coordinate in either are missing and not drawn.
        correct: optional (N,) bools: lines are green when True, red when False; without it each match gets
            its own colour.
        out: write the figure there (format from the extension, e.g. .png) and close it; otherwise return it.
        gt_kps: optional (N, 2) ground-truth target positions, drawn as white crosses.
        title: figure title.

    Returns the output path when ``out`` is given, else the matplotlib Figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import matplotlib

    a, b = to_numpy_image(src_img), to_numpy_image(tgt_img)
    ps, pt = _points(src_kps), _points(tgt_kps)
    if ps.shape != pt.shape:
        raise ValueError("src_kps and tgt_kps differ in shape: %s vs %s" % (ps.shape, pt.shape))
    gt = _points(gt_kps)
    ok = None if correct is None else np.asarray(
        correct.detach().cpu().numpy() if hasattr(correct, "detach") else correct, dtype=bool).reshape(-1)
    if ok is not None and ok.shape[0] != ps.shape[0]:
        raise ValueError("correct has %d entries for %d keypoints" % (ok.shape[0], ps.shape[0]))

    canvas, off = side_by_side(a, b, gap=max(4, a.shape[1] // 50))

    fig = Figure(figsize=(canvas.shape[1] / dpi * 2, canvas.shape[0] / dpi * 2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 0.93 if title else 1])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
    ax.axis("off")
    valid = (ps >= 0).all(1) & (pt >= 0).all(1)
    idx = np.flatnonzero(valid)
    cmap = matplotlib.colormaps["hsv"]
    for n, i in enumerate(idx):
        if ok is not None:
            colour = (0.1, 0.85, 0.1) if ok[i] else (0.95, 0.1, 0.1)
        else:
            colour = cmap(n / max(len(idx), 1))
        (x0, y0), (x1, y1) = ps[i], pt[i]
        ax.plot([x0, x1 + off], [y0, y1], "-", color=colour, linewidth=linewidth, alpha=0.85)
        ax.plot([x0], [y0], "o", color=colour, markersize=3)
        ax.plot([x1 + off], [y1], "o", color=colour, markersize=3)
    if gt is not None:
        g = gt[(gt >= 0).all(1)]
        ax.plot(g[:, 0] + off, g[:, 1], "x", color="white", markersize=5, markeredgewidth=1.2)
    if title:
        fig.suptitle(title, fontsize=9)
    if out is None:
        return fig
    fig.savefig(out)
    return out
