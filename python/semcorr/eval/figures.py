"""Figures written by ``semcorr eval`` into ``--out``:

* ``pck_curve.png``: PCK against alpha (overall, for each available reference length, and
  per category for the benchmark's own), from the run's accumulated counts;
* ``qualitative.png``: a grid of pairs, source | target, each keypoint joined to its
  transferred position (green: within alpha * L of the ground truth, red: not; the ground
  truth is a white cross); under a paper protocol the pairs are drawn as that protocol sees
  them: query | reference (target | source for T2S) in its evaluation frame, with its predictions;
* Caltech instead: ``mask_metrics.png`` (per-category LT-ACC and IoU) and a qualitative grid
  of transferred masks (green = target mask, red = transferred source mask).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List

import numpy as np
import torch

from semcorr.viz import side_by_side

__all__ = ["write_figures", "plot_pck_curve", "plot_mask_metrics", "plot_keypoint_grid",
           "plot_mask_grid"]

_KIND_LABEL = {"img": "alpha_img", "bbox": "alpha_bbox", "kpbox": "keypoint box"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _img(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def plot_pck_curve(results: dict, path: Path) -> Path:
    plt = _plt()
    groups = results["groups"]
    kind = results["primary_thresh"]
    alphas = [a for a in results["curve_alphas"]]
    keys = [format(float(a), ".4g") for a in alphas]
    fig, ax = plt.subplots(figsize=(7, 5))
    cats = sorted(g for g in groups if g.startswith("category/"))
    if len(cats) <= 25:
        for g in cats:
            v = groups[g].get("pck", {}).get(kind)
            if v:
                ax.plot(alphas, [100 * v[k] for k in keys], lw=0.8, alpha=0.45)
    allg = groups.get("all", {}).get("pck", {})
    for k2, vals in allg.items():
        ax.plot(alphas, [100 * vals[k] for k in keys], lw=2.5 if k2 == kind else 1.5,
                ls="-" if k2 == kind else "--", color="k" if k2 == kind else None,
                label=f"all, {_KIND_LABEL.get(k2, k2)}" + (" (benchmark)" if k2 == kind else ""))
    for a in results["alphas"]:
        ax.axvline(a, color="0.85", lw=0.8, zorder=0)
    size = results.get("image_size")
    ax.set_title(f"{results['method']} on {results['dataset']} ({results['pairs']} pairs"
                 + (f", {size[0]}x{size[1]}" if size else "") + ")")
    ax.set_xlabel("alpha")
    ax.set_ylabel("PCK (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, max(alphas))
    ax.grid(alpha=0.3)
    if cats and len(cats) <= 25:
        ax.plot([], [], lw=0.8, color="0.5", label="per category (benchmark L)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_mask_metrics(results: dict, path: Path) -> Path:
    plt = _plt()
    groups = results["groups"]
    cats = sorted(g for g in groups if g.startswith("category/"))
    names = [g.split("/", 1)[1] for g in cats] + ["all"]
    lt = [groups[g].get("ltacc", math.nan) for g in cats] + [groups["all"].get("ltacc", math.nan)]
    iou = [groups[g].get("iou", math.nan) for g in cats] + [groups["all"].get("iou", math.nan)]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(names) + 2), 4.5))
    ax.bar(x - 0.2, lt, 0.4, label="LT-ACC")
    ax.bar(x + 0.2, iou, 0.4, label="IoU")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"{results['method']} on {results['dataset']}: mask transfer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pair_grid(n: int):
    """(plt, figure, axes) of a grid of ``n`` pair panels, two per row, axes off."""
    plt = _plt()
    ncols = 2 if n > 1 else 1
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return plt, fig, axes


def _save_grid(plt, fig, path: Path, title: str) -> Path:
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_keypoint_grid(samples: List[dict], preds: List[np.ndarray], path: Path, kind: str,
                       alpha: float, title: str = "", max_kps: int = 20) -> Path:
    plt, fig, axes = _pair_grid(len(samples))
    for j, (s, pred) in enumerate(zip(samples, preds)):
        ax = axes.ravel()[j]
        a, b = _img(s["src_img"]), _img(s["tgt_img"])
        canvas, off = side_by_side(a, b, dtype=np.float32)
        ax.imshow(canvas)
        src, gt = s["src_kps"].numpy(), s["tgt_kps"].numpy()
        thresh = s.get(f"thresh_{kind}", math.nan)
        if not (isinstance(thresh, float) and math.isfinite(thresh)):
            thresh = s["thresh_img"]
        n_ok = n_all = 0
        for i in range(min(len(src), max_kps) if len(src) else 0):
            if (gt[i] < 0).any() or (src[i] < 0).any():
                continue
            ok = np.isfinite(pred[i]).all() and np.linalg.norm(pred[i] - gt[i]) <= alpha * thresh
            n_ok += int(ok)
            n_all += 1
            color = "lime" if ok else "red"
            ax.plot([src[i, 0], pred[i, 0] + off], [src[i, 1], pred[i, 1]], color=color, lw=0.9, alpha=0.8)
            ax.plot(src[i, 0], src[i, 1], "o", ms=3, color=color)
            ax.plot(gt[i, 0] + off, gt[i, 1], "x", ms=5, mew=1.5, color="white")
        ax.set_title(f"{s['pair_id']}  [{n_ok}/{n_all} @ {alpha:g}]", fontsize=8)
    return _save_grid(plt, fig, path, title)


def plot_mask_grid(samples: List[dict], transferred: List[np.ndarray], path: Path, title: str = "") -> Path:
    plt, fig, axes = _pair_grid(len(samples))
    for j, (s, tm) in enumerate(zip(samples, transferred)):
        ax = axes.ravel()[j]
        a, b = _img(s["src_img"]), _img(s["tgt_img"])
        sm, gm = s["src_mask"].numpy(), s["tgt_mask"].numpy()
        a = a * 0.6 + 0.4 * np.where(sm[..., None], [1.0, 0.2, 0.2], a)
        over = b.copy()
        over[gm] = over[gm] * 0.5 + 0.5 * np.array([0.1, 1.0, 0.1])
        over[tm] = over[tm] * 0.5 + 0.5 * np.array([1.0, 0.1, 0.1])
        canvas, _ = side_by_side(a, over, dtype=np.float32)
        ax.imshow(np.clip(canvas, 0, 1))
        ax.set_title(s["pair_id"], fontsize=8)
    return _save_grid(plt, fig, path, title)


def _protocol_view(sample: dict, pred: dict, protocol) -> tuple:
    """(plot sample, predictions) of one pair as ``protocol`` evaluates it: the query and reference images
    shown at their evaluation-frame sizes, keypoints, ground truth and reference lengths in that frame
    (``pred``: the pair's prediction, :func:`semcorr.eval.inference.predict`)."""
    import torch.nn.functional as F

    from .protocol_geometry import pair_inputs

    x = pair_inputs(sample, protocol)
    q, r = ("src", "tgt") if protocol.direction == "s2t" else ("tgt", "src")

    def show(img, size):
        size = (max(1, int(round(size[0]))), max(1, int(round(size[1]))))
        return F.interpolate(img.float()[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]

    view = {"pair_id": sample["pair_id"], "src_img": show(sample[f"{q}_img"], x.geo.q_e_size),
            "tgt_img": show(sample[f"{r}_img"], x.geo.r_e_size), "src_kps": x.q_e.float(), "tgt_kps": x.gt.float()}
    view.update({f"thresh_{k}": float(v) for k, v in x.thresh.items()})
    return view, pred["pred"].float().numpy()


def _transferred_mask(sample: dict, pred: dict) -> np.ndarray:
    """The transferred source mask at the target image's size: the uniform setting's dense transfer, or the
    polygon protocol's predicted polygon (rasterised in its frame) resized to the image (nearest)."""
    if "transferred" in pred:
        return pred["transferred"].numpy()
    import torch.nn.functional as F

    size = tuple(sample["tgt_img"].shape[-2:])
    return F.interpolate(pred["pred_mask"].float()[None, None], size=size, mode="nearest")[0, 0].bool().numpy()


def write_figures(results: dict, samples: List[dict], preds: List[dict], out: Path, kind: str, alpha: float,
                  protocol=None) -> List[Path]:
    """Write the run's figures into ``out``; returns their paths. ``samples``: the qualitative pairs (dataset
    items), ``preds``: their predictions (:func:`semcorr.eval.inference.predict`; figures never run a model);
    ``protocol``: the paper protocol the run used (None: the uniform setting), whose view of each pair the
    qualitative figure then shows."""
    out = Path(out)
    paths: List[Path] = []
    is_mask = "ltacc" in results["groups"].get("all", {})
    if is_mask:
        paths.append(plot_mask_metrics(results, out / "mask_metrics.png"))
    elif results["groups"].get("all", {}).get("pck"):
        paths.append(plot_pck_curve(results, out / "pck_curve.png"))
    if not samples:
        return paths
    title = f"{results['method']} on {results['dataset']}"
    if is_mask:
        masks = [_transferred_mask(s, p) for s, p in zip(samples, preds)]
        paths.append(plot_mask_grid(samples, masks, out / "qualitative.png", title))
    elif protocol is not None:
        views = [_protocol_view(s, p, protocol) for s, p in zip(samples, preds)]
        what = "source | target" if protocol.direction == "s2t" else "target | source (T2S)"
        paths.append(plot_keypoint_grid([v for v, _ in views], [p for _, p in views], out / "qualitative.png",
                                        kind, alpha, f"{title}, protocol {protocol.key}: {what}\ngreen = within "
                                        f"{alpha:g} x L ({_KIND_LABEL.get(kind, kind)}), x = ground truth"))
    else:
        paths.append(plot_keypoint_grid(samples, [p["pred"].numpy() for p in preds], out / "qualitative.png",
                                        kind, alpha, f"{title}: green = within {alpha:g} x L "
                                        f"({_KIND_LABEL.get(kind, kind)}), x = ground truth"))
    return paths
