"""The benchmark runner behind ``semcorr eval``.

For every pair it runs the model once (batched), turns the output into a small JSON
*record* (integer counts for PCK, floats for the Caltech metrics), appends the record to
``<out>/pairs/pairs-rank<r>.jsonl`` and adds it to an accumulator. ``--resume`` reads the
records already written and skips those pairs. The final numbers are computed only from
the accumulated sums, so a resumed or a distributed run gives exactly the numbers of a
single uninterrupted run:

* per-keypoint PCK = sum(correct) / sum(valid)          (integers)
* per-pair PCK (the number the papers report) = mean over pairs of correct/valid; each
  pair's fraction is stored in fixed point, ``round(correct * 2^40 / valid)``, so sums are
  integer and order-free (error < 1e-12).
* Caltech LT-ACC / IoU / LOC-ERR: per-pair means, also summed in fixed point.

Groups: ``all``, ``category/<name>`` and each sample's extra groups (SPair's variation
levels such as ``viewpoint/hard``, the synthetic benchmark's ``warp/tps``).

Protocols (:mod:`semcorr.eval.protocols`): ``cfg.protocol = "paper"`` (default) evaluates each pair the way
the method's published evaluation script does (loader at original size, the protocol's resize, padding,
direction, transfer, frame and threshold, :mod:`semcorr.eval.protocol_geometry`); when the paper has no
protocol for the dataset, or with ``"uniform"``, both images are squashed to ``cfg.size`` and read source ->
target (today's common setting). A model with random parts gets its ``UNTRAINED: ...`` line printed and
written into ``config.json`` and ``results.json``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence

import torch

from . import distributed as D
from .protocols import Protocol, resolve_protocol, uniform_protocol
from .mask_transfer import label_transfer_accuracy, localization_error, mask_iou, transfer_mask
from .pck import pck_counts

__all__ = ["EvalConfig", "evaluate", "collate_samples", "pair_records", "accumulate", "summarize",
           "format_table", "IdentityBaseline", "CURVE_ALPHAS", "FX_BITS", "load_model", "protocol_records"]

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
# configuration
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class EvalConfig:
    method: str = "nn"
    dataset: str = "synthetic"
    root: str | None = None
    split: str | None = None             # None: the protocol's (test)
    alphas: Sequence[float] | None = None  # None: the protocol's (uniform: 0.05, 0.1, 0.15)
    size: int | None = 240               # the uniform setting's square size (None: original sizes)
    protocol: str = "paper"              # "paper", "uniform" or a key of semcorr.eval.protocols.PROTOCOLS
    batch_size: int = 4
    limit: int | None = None
    out: str | None = None
    resume: bool = False
    thresh: str | None = None            # None: the dataset's convention
    device: str | None = None            # None: CUDA when available
    num_workers: int = 0
    model_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    progress: bool = True
    figures: bool = True
    print_table: bool = True
    n_qualitative: int = 6

    def identity(self) -> dict:
        """Fields that must match for ``--resume`` to reuse records."""
        return {"method": self.method, "dataset": self.dataset, "root": self.root, "split": self.split,
                "size": self.size, "alphas": [float(a) for a in self.alphas or ()], "protocol": self.protocol,
                "model_kwargs": self.model_kwargs, "dataset_kwargs": self.dataset_kwargs}


# ----------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------

class _IdentityMatches:
    def __init__(self, src_size, tgt_size):
        self.sx = tgt_size[1] / src_size[1]
        self.sy = tgt_size[0] / src_size[0]

    def transfer_keypoints(self, kps: torch.Tensor) -> torch.Tensor:
        out = kps.clone().float()
        out[..., 0] *= self.sx
        out[..., 1] *= self.sy
        pad = (kps < 0).any(-1, keepdim=True)
        return torch.where(pad, torch.full_like(out, -1.0), out)


class IdentityBaseline(torch.nn.Module):
    """The no-motion baseline: every point maps to the same relative position in the target
    (the lower bound usually quoted next to PCK tables). Method name ``identity``."""

    name = "identity"

    def match(self, src_img: torch.Tensor, tgt_img: torch.Tensor):
        return _IdentityMatches(tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:]))


def load_model(method: str, device: torch.device, **kwargs):
    if method == "identity":
        return IdentityBaseline()
    from semcorr.models import build_model

    model = build_model(method, **kwargs)
    model.to(device)
    model.eval()
    return model


def run_model(model, src: torch.Tensor, tgt: torch.Tensor):
    if hasattr(model, "match"):
        return model.match(src, tgt)
    with torch.no_grad():
        return model(src, tgt)


# ----------------------------------------------------------------------------------------
# batches and per-pair records
# ----------------------------------------------------------------------------------------

def collate_samples(samples: List[dict]) -> dict:
    """Stack what stacks (tensors of one shape, numbers); keep lists of the rest."""
    out = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        if all(isinstance(v, torch.Tensor) for v in vals) and len({tuple(v.shape) for v in vals}) == 1:
            out[k] = torch.stack(vals)
        elif all(isinstance(v, (bool, int, float)) for v in vals):
            out[k] = torch.tensor(vals, dtype=torch.float64 if any(isinstance(v, float) for v in vals)
                                  else torch.int64)
        else:
            out[k] = vals
    return out


def _split_batch(batch: dict) -> List[dict]:
    n = len(batch["index"])
    return [collate_samples([{k: (v[i] if isinstance(v, (list, torch.Tensor)) else v)
                              for k, v in batch.items()}]) for i in range(n)]


def _base_record(batch: dict, i: int) -> dict:
    return {"index": int(batch["index"][i]), "pair_id": batch["pair_id"][i],
            "category": batch["category"][i], "groups": list(batch["groups"][i])}


def pair_records(model, batch: dict, alphas: Sequence[float], device: torch.device) -> List[dict]:
    """Run the model on a collated batch; one record per pair."""
    if isinstance(batch["src_img"], list) or isinstance(batch["tgt_img"], list):
        return [r for b in _split_batch(batch) for r in pair_records(model, b, alphas, device)]
    if "src_mask" in batch:
        return _mask_records(model, batch, device)
    src, tgt = batch["src_img"].to(device), batch["tgt_img"].to(device)
    matches = run_model(model, src, tgt)
    pred = matches.transfer_keypoints(batch["src_kps"].to(device)).detach().float().cpu()
    gt = batch["tgt_kps"].float()
    records = [_base_record(batch, i) for i in range(len(batch["index"]))]
    for kind in THRESH_KINDS:
        thresh = batch[f"thresh_{kind}"].double()
        correct, n_valid = pck_counts(pred, gt, torch.nan_to_num(thresh, nan=0.0), alphas)
        for i, rec in enumerate(records):
            rec["n_valid"] = int(n_valid[i])
            ok = math.isfinite(float(thresh[i])) and float(thresh[i]) > 0
            rec.setdefault("correct", {})[kind] = correct[i].tolist() if ok else None
            rec.setdefault("thresh", {})[kind] = float(thresh[i]) if ok else None
    for i, rec in enumerate(records):  # the points themselves (frame of the PCK; padding rows stay -1)
        rec["pred_kps"], rec["gt_kps"] = pred[i].tolist(), gt[i].tolist()
    return records


def _sample(batch: dict, i: int) -> dict:
    return {k: (v[i] if isinstance(v, (list, torch.Tensor)) else v) for k, v in batch.items()}


def protocol_records(model, batch: dict, protocol: Protocol, alphas: Sequence[float],
                     device: torch.device) -> List[dict]:
    """One record per pair of a batch from a loader at original size, evaluated under ``protocol`` (pair by
    pair, as every published script does: the inputs of a pair need not share a size)."""
    from .protocol_geometry import evaluate_pair, polygon_metrics

    def model_fn(query, reference):
        return run_model(model, query.to(device), reference.to(device))

    records = []
    for i in range(len(batch["index"])):
        rec = _base_record(batch, i)
        if protocol.task == "polygon":            # Caltech under HPF's protocol: no LOC-ERR
            m = polygon_metrics(model_fn, _sample(batch, i), protocol)
            rec.update({k: (v if math.isfinite(v) else None) for k, v in m.items()}, locerr=None)
            records.append(rec)
            continue
        out = evaluate_pair(model_fn, _sample(batch, i), protocol)
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
        records.append(rec)
    return records


def _mask_records(model, batch: dict, device: torch.device) -> List[dict]:
    """Caltech: transfer the source mask to the target through target->source matches."""
    tgt, src = batch["tgt_img"].to(device), batch["src_img"].to(device)
    b, _, h, w = tgt.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xs, ys], -1).reshape(1, h * w, 2).expand(b, -1, -1).contiguous()
    matches = run_model(model, tgt, src)           # target -> source
    back = matches.transfer_keypoints(grid.to(device)).detach().double().cpu().reshape(b, h, w, 2)
    records = []
    for i in range(b):
        rec = _base_record(batch, i)
        transferred = transfer_mask(batch["src_mask"][i], back[i])
        rec["ltacc"] = label_transfer_accuracy(transferred, batch["tgt_mask"][i])
        rec["iou"] = mask_iou(transferred, batch["tgt_mask"][i])
        try:
            rec["locerr"] = localization_error(batch["src_mask"][i], batch["tgt_mask"][i], back[i])
        except ValueError:          # an empty polygon: LOC-ERR undefined
            rec["locerr"] = math.nan
        for m in MASK_METRICS:
            if not math.isfinite(rec[m]):
                rec[m] = None
        records.append(rec)
    return records


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


def _open_sink(path: Path):
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


# ----------------------------------------------------------------------------------------
# the evaluation
# ----------------------------------------------------------------------------------------

def evaluate(cfg: EvalConfig, model=None, dataset=None, log: Callable[[str], None] | None = None) -> dict:
    """Evaluate ``cfg.method`` on ``cfg.dataset`` under ``cfg.protocol``; returns the results dict (also
    written to ``<out>/results.json`` by rank 0). Works alone or under torchrun (see
    :mod:`semcorr.eval.distributed`). A ``dataset`` passed in must be at original size (``size=None``) when a
    published protocol applies."""
    from semcorr.data.datasets import build_dataset
    from semcorr.models.base import untrained_line

    info = D.setup(cfg.device)
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    say = log if info.is_main else (lambda s: None)
    try:
        run_proto, proto_note = resolve_protocol(cfg.protocol, cfg.method, cfg.dataset)
        split = cfg.split or (run_proto.split if run_proto is not None else "test")
        if dataset is None:
            dataset = build_dataset(cfg.dataset, cfg.root, split=split,
                                    size=None if run_proto is not None else cfg.size, **cfg.dataset_kwargs)
        if run_proto is not None and dataset.size is not None:
            raise ValueError(f"protocol {run_proto.key} resizes the images itself: the dataset must be at "
                             f"original size (size=None), got {dataset.size}")
        proto = run_proto or uniform_protocol(dataset.name, dataset.size[0] if dataset.size else None,
                                              cfg.thresh or dataset.default_thresh, cfg.method)
        n = len(dataset) if cfg.limit is None else min(cfg.limit, len(dataset))
        kind = cfg.thresh or proto.thresh
        if kind not in THRESH_KINDS:
            raise ValueError(f"--thresh must be one of {THRESH_KINDS}, got {kind!r}")
        report_alphas = tuple(float(a) for a in (cfg.alphas if cfg.alphas else proto.alphas))
        alphas = sorted(set(report_alphas) | set(CURVE_ALPHAS))
        out = Path(cfg.out) if cfg.out else None

        # -- the model (before the output folder: its UNTRAINED line goes into config.json) -----------
        model_kwargs = dict(proto.model_kwargs)
        model_kwargs.update(cfg.model_kwargs)
        model = model if model is not None else load_model(cfg.method, info.device, **model_kwargs)
        untrained = untrained_line(model)

        # -- output folder and resume -------------------------------------------------------
        ident = dict(cfg.identity(), alphas=alphas, split=split, protocol=proto.key)
        if out is not None:
            cfg_path = out / "config.json"
            if cfg.resume and cfg_path.is_file():       # every rank checks: all fail alike
                old = json.loads(cfg_path.read_text())
                diff = [k for k in ident if old.get(k) != ident[k]]
                if diff:
                    raise SystemExit(f"--resume: {out} holds a run with different {', '.join(diff)}; "
                                     f"use another --out or drop --resume")
            D.barrier(info)
            if info.is_main:
                (out / "pairs").mkdir(parents=True, exist_ok=True)
                if not cfg.resume:
                    for p in (out / "pairs").glob("pairs-*.jsonl"):
                        p.unlink()
                cfg_path.write_text(json.dumps(dict(ident, untrained=untrained), indent=2))
            D.barrier(info)
        done = read_records(out) if (out is not None and cfg.resume) else {}
        done = {i: r for i, r in done.items() if i < n}
        if done:
            ids = dataset.pair_ids()
            bad = [i for i, r in done.items() if r["pair_id"] != ids[i]]
            if bad:
                raise SystemExit(f"--resume: stored pair {bad[0]} is {done[bad[0]]['pair_id']!r} but the "
                                 f"dataset now has {ids[bad[0]]!r} there; start afresh")
        todo = [i for i in range(n) if i not in done]
        input_txt = (proto.describe()["input"] if run_proto is not None else
                     ("%dx%d" % tuple(dataset.size) if dataset.size else "original size"))
        say(f"[semcorr eval] {cfg.method} on {dataset.name} ({split}): {n} pairs"
            + (f", {len(done)} already done (resume)" if done else "")
            + (f", {info.world_size} processes ({info.backend})" if info.active else "")
            + f", protocol {proto.key}" + (f" ({proto_note})" if proto_note else "")
            + f", images {input_txt}")
        if untrained:
            say(untrained)

        # -- the loop ---------------------------------------------------------------------
        subset = torch.utils.data.Subset(dataset, todo)
        sampler = D.UnpaddedDistributedSampler(subset, num_replicas=info.world_size, rank=info.rank)
        loader = torch.utils.data.DataLoader(subset, batch_size=cfg.batch_size, sampler=sampler,
                                             collate_fn=collate_samples, num_workers=cfg.num_workers)
        acc: Dict[str, Dict[str, int]] = {}
        if info.is_main:            # records from an earlier run are counted once, here
            for r in done.values():
                accumulate(acc, r, alphas)
        sink = _open_sink(out / "pairs" / f"pairs-rank{info.rank}.jsonl") if out is not None else None
        from tqdm import tqdm

        bar = tqdm(total=len(sampler), unit="pair", desc=f"{cfg.method}/{dataset.name}",
                   disable=not (cfg.progress and info.is_main), file=sys.stderr)
        t0 = time.time()
        try:
            for batch in loader:
                recs = (protocol_records(model, batch, run_proto, alphas, info.device) if run_proto is not None
                        else pair_records(model, batch, alphas, info.device))
                for rec in recs:
                    accumulate(acc, rec, alphas)
                    if sink is not None:
                        sink.write(json.dumps(rec) + "\n")
                if sink is not None:
                    sink.flush()
                bar.update(len(batch["index"]))
        finally:
            bar.close()
            if sink is not None:
                sink.close()
        elapsed = time.time() - t0
        total = D.all_reduce_counts(info, acc)

        # -- results ----------------------------------------------------------------------
        summary = summarize(total, alphas)
        metric = "pck" if proto.average == "pair" else "pck_per_keypoint"
        # T2S measures the error (and L) in the source image
        thresh_doc = THRESH_DOC[kind].replace("target", "source") if proto.direction == "t2s" else THRESH_DOC[kind]
        results = {
            "method": cfg.method, "dataset": dataset.name, "split": split,
            "image_size": list(dataset.size) if (dataset.size and run_proto is None) else None,
            "input": input_txt, "protocol": proto.describe(), "protocol_note": proto_note,
            "untrained": untrained,
            "pairs": n, "primary_thresh": kind, "thresh_definition": thresh_doc,
            "alphas": list(report_alphas), "curve_alphas": alphas,
            "pck_average": ("mean over pairs of per-pair PCK" if metric == "pck" else "pooled keypoints")
            + " (pck: mean over pairs; pck_per_keypoint: pooled keypoints)",
            "world_size": info.world_size, "seconds": elapsed,
            "groups": summary,
        }
        if info.is_main:
            what = ("Caltech mask transfer" if "src_mask" in _peek_keys(dataset)
                    else f"PCK in %, {thresh_doc}"
                    + (f", in {proto.frame.describe()}" if run_proto is not None else ""))
            title = (f"{cfg.method} on {dataset.name} ({split}, {n} pairs, protocol {proto.key}, "
                     f"images {input_txt}); {what}")
            if untrained:
                title = untrained + "\n" + title
            table = format_table(summary, report_alphas, kind, title, metric=metric)
            results["table"] = table
            if cfg.print_table:
                print(table, flush=True)
            if out is not None:
                (out / "results.json").write_text(json.dumps(results, indent=2))
                if cfg.figures:
                    from . import figures

                    paths = figures.write_figures(results, dataset, model, out, info.device,
                                                  list(range(min(cfg.n_qualitative, n))), kind,
                                                  float(report_alphas[len(report_alphas) // 2])
                                                  if report_alphas else 0.1, protocol=run_proto)
                    results["figures"] = [str(p) for p in paths]
                    (out / "results.json").write_text(json.dumps(results, indent=2))
                say(f"[semcorr eval] results: {out / 'results.json'}")
        D.barrier(info)
        return results
    finally:
        D.cleanup(info)


def _peek_keys(dataset) -> Iterable[str]:
    return ("src_mask",) if getattr(dataset, "name", "") == "caltech" else ()
