"""Records and their accumulation for ``semcorr eval``: predictions -> per-pair JSON records -> integer sums ->
per-group numbers, tables and the record files (``--resume``).

No model runs here: a record is computed from a pair's prediction (:mod:`semcorr.eval.inference`) and its
ground truth. See :mod:`semcorr.eval.runner` for why the sums are integers (fixed point, ``FX_BITS``).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch

from .mask_transfer import label_transfer_accuracy, localization_error, mask_iou
from .pck import pck_counts

__all__ = ["FX_BITS", "FX", "CURVE_ALPHAS", "THRESH_KINDS", "THRESH_DOC", "MASK_METRICS", "MASK_NAMES", "akey",
           "base_record", "pair_records", "record_groups", "accumulate", "summarize", "format_table",
           "read_records", "open_sink"]

FX_BITS = 40
FX = 1 << FX_BITS
#: alphas at which PCK is always counted, for the PCK-vs-alpha curve
CURVE_ALPHAS = tuple(round(0.01 * i, 2) for i in range(1, 21))
THRESH_KINDS = ("img", "bbox", "kpbox")
THRESH_DOC = {"img": "alpha_img: L = max(H, W) of the target image",
              "bbox": "alpha_bbox: L = max(h, w) of the target object box",
              "kpbox": "keypoint box: L = longest side of the box around the target keypoints"}
MASK_METRICS = ("ltacc", "iou", "locerr")
MASK_NAMES = {"ltacc": "LT-ACC", "iou": "IoU", "locerr": "LOC-ERR"}


def akey(alpha: float) -> str:
    return format(float(alpha), ".4g")



# ----------------------------------------------------------------------------------------
# per-pair records
# ----------------------------------------------------------------------------------------

def base_record(batch: dict, i: int) -> dict:
    return {"index": int(batch["index"][i]), "pair_id": batch["pair_id"][i],
            "category": batch["category"][i], "groups": list(batch["groups"][i])}


def pair_records(batch: dict, preds: List[dict], protocol, alphas: Sequence[float]) -> List[dict]:
    """One record per pair of a collated batch from its predictions (:func:`semcorr.eval.inference.predict`
    with the same ``protocol``)."""
    out = []
    for i, p in enumerate(preds):
        rec = base_record(batch, i)
        if protocol is not None and protocol.task == "polygon":   # Caltech under HPF's protocol: no LOC-ERR
            m = {"ltacc": label_transfer_accuracy(p["pred_mask"], p["gt_mask"]),
                 "iou": mask_iou(p["pred_mask"], p["gt_mask"])}
            rec.update({k: (v if math.isfinite(v) else None) for k, v in m.items()}, locerr=None)
        elif protocol is not None:
            _protocol_counts(rec, p, alphas)
        elif "transferred" in p:
            _mask_metrics(rec, p, batch["src_mask"][i], batch["tgt_mask"][i])
        else:
            _uniform_counts(rec, p["pred"], batch["tgt_kps"][i].float(),
                            {kind: batch[f"thresh_{kind}"][i] for kind in THRESH_KINDS}, alphas)
        out.append(rec)
    return out


def _uniform_counts(rec: dict, pred: torch.Tensor, gt: torch.Tensor, thresh: dict, alphas) -> None:
    for kind in THRESH_KINDS:
        t = thresh[kind].double().reshape(1)
        correct, n_valid = pck_counts(pred[None], gt[None], torch.nan_to_num(t, nan=0.0), alphas)
        rec["n_valid"] = int(n_valid[0])
        ok = math.isfinite(float(t)) and float(t) > 0
        rec.setdefault("correct", {})[kind] = correct[0].tolist() if ok else None
        rec.setdefault("thresh", {})[kind] = float(t) if ok else None
    # the points themselves (frame of the PCK; padding rows stay -1)
    rec["pred_kps"], rec["gt_kps"] = pred.tolist(), gt.tolist()


def _protocol_counts(rec: dict, out: dict, alphas) -> None:
    pred, gt = out["pred"][None], out["gt"][None]
    rec["n_valid"] = int(gt.shape[1])
    rec["correct"], rec["thresh"] = {}, {}
    for kind in THRESH_KINDS:
        L = out["thresh"][kind]
        ok = math.isfinite(L) and L > 0
        if ok and gt.shape[1]:
            correct, _ = pck_counts(pred, gt, torch.tensor([L], dtype=torch.float64), alphas)
            rec["correct"][kind] = correct[0].tolist()
        else:
            rec["correct"][kind] = [0] * len(alphas) if ok else None
        rec["thresh"][kind] = float(L) if ok else None
    rec["pred_kps"], rec["gt_kps"] = out["pred"].tolist(), out["gt"].tolist()  # in the protocol's PCK frame


def _mask_metrics(rec: dict, p: dict, src_mask: torch.Tensor, tgt_mask: torch.Tensor) -> None:
    rec["ltacc"] = label_transfer_accuracy(p["transferred"], tgt_mask)
    rec["iou"] = mask_iou(p["transferred"], tgt_mask)
    try:
        rec["locerr"] = localization_error(src_mask, tgt_mask, p["back"])
    except ValueError:          # an empty polygon: LOC-ERR undefined
        rec["locerr"] = math.nan
    for m in MASK_METRICS:
        if not math.isfinite(rec[m]):
            rec[m] = None

# ----------------------------------------------------------------------------------------
# accumulation (integers only) and summary
# ----------------------------------------------------------------------------------------

def record_groups(rec: dict) -> List[str]:
    return ["all", f"category/{rec['category']}"] + list(rec.get("groups", []))


def accumulate(acc: Dict[str, Dict[str, int]], rec: dict, alphas: Sequence[float]) -> None:
    """Add one record to ``{group: {metric: int}}``."""
    for g in record_groups(rec):
        a = acc.setdefault(g, {})
        a["pairs"] = a.get("pairs", 0) + 1
        for kind, corr in (rec.get("correct") or {}).items():
            n = rec["n_valid"]
            if corr is None or n == 0:
                continue
            p = f"pck/{kind}"
            a[f"{p}/pairs"] = a.get(f"{p}/pairs", 0) + 1
            a[f"{p}/valid"] = a.get(f"{p}/valid", 0) + n
            for alpha, c in zip(alphas, corr):
                k = f"{p}/{akey(alpha)}"
                a[f"{k}/correct"] = a.get(f"{k}/correct", 0) + int(c)
                a[f"{k}/pairfx"] = a.get(f"{k}/pairfx", 0) + (2 * int(c) * FX + n) // (2 * n)
        for m in MASK_METRICS:
            v = rec.get(m)
            if v is None:
                continue
            a[f"{m}/pairs"] = a.get(f"{m}/pairs", 0) + 1
            a[f"{m}/fx"] = a.get(f"{m}/fx", 0) + int(round(float(v) * FX))


def summarize(acc: Dict[str, Dict[str, int]], alphas: Sequence[float]) -> Dict[str, dict]:
    """Sums -> per-group numbers: ``pck[kind][alpha]`` (mean over pairs),
    ``pck_per_keypoint[kind][alpha]``, Caltech metrics."""
    out = {}
    for g, a in sorted(acc.items()):
        s: Dict[str, Any] = {"pairs": a.get("pairs", 0)}
        for kind in THRESH_KINDS:
            p = f"pck/{kind}"
            npairs = a.get(f"{p}/pairs", 0)
            if not npairs:
                continue
            nvalid = a[f"{p}/valid"]
            s.setdefault("pck", {})[kind] = {
                akey(al): a.get(f"{p}/{akey(al)}/pairfx", 0) / FX / npairs for al in alphas}
            s.setdefault("pck_per_keypoint", {})[kind] = {
                akey(al): a.get(f"{p}/{akey(al)}/correct", 0) / nvalid for al in alphas}
            s.setdefault("pck_pairs", {})[kind] = npairs
            s.setdefault("keypoints", {})[kind] = nvalid
        for m in MASK_METRICS:
            n = a.get(f"{m}/pairs", 0)
            if n:
                s[m] = a[f"{m}/fx"] / FX / n
        out[g] = s
    return out


def format_table(summary: Dict[str, dict], alphas: Sequence[float], kind: str, title: str = "",
                 metric: str = "pck") -> str:
    """Per-category table (then the extra groups) of the primary metric (``metric``: ``pck``, the mean over
    pairs, or ``pck_per_keypoint``)."""
    cats = sorted(g for g in summary if g.startswith("category/"))
    extra = sorted(g for g in summary if g != "all" and not g.startswith("category/"))
    is_mask = any(m in summary.get("all", {}) for m in MASK_METRICS)
    if is_mask:
        heads = [MASK_NAMES[m] for m in MASK_METRICS]
    else:
        heads = [f"PCK@{akey(a)}" for a in alphas]
    name_w = max([len("category")] + [len(g.split("/", 1)[1]) for g in cats] + [len(g) for g in extra] + [3])

    def row(label, s):
        cells = []
        for j, h in enumerate(heads):
            if is_mask:
                v = s.get(MASK_METRICS[j])
                cells.append(f"{v:>8.4f}" if v is not None else f"{'-':>8}")
            else:
                v = s.get(metric, {}).get(kind, {}).get(akey(alphas[j]))
                cells.append(f"{100 * v:>{max(8, len(h))}.2f}" if v is not None else f"{'-':>{max(8, len(h))}}")
        return f"{label:<{name_w}}  {s.get('pairs', 0):>6}  " + "  ".join(cells)

    head = f"{'category':<{name_w}}  {'pairs':>6}  " + "  ".join(
        f"{h:>8}" if is_mask else f"{h:>{max(8, len(h))}}" for h in heads)
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    lines += [row(g.split("/", 1)[1], summary[g]) for g in cats]
    lines.append("-" * len(head))
    if "all" in summary:
        lines.append(row("all", summary["all"]))
    if extra:
        lines.append("-" * len(head))
        lines += [row(g, summary[g]) for g in extra]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# record files (resume)
# ----------------------------------------------------------------------------------------

def read_records(out: Path) -> Dict[int, dict]:
    recs: Dict[int, dict] = {}
    for path in sorted((out / "pairs").glob("pairs-*.jsonl")):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:     # a line cut by an interruption
                    continue
                recs[int(r["index"])] = r
    return recs


def open_sink(path: Path):
    """Append to a record file; a line cut by an interrupted run is closed off first so
    that the next record starts on a line of its own (the cut line is skipped on reading)."""
    cut = False
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
    sink = open(path, "a")
    if cut:
        sink.write("\n")
    return sink

