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

Modules, in one direction: :mod:`~semcorr.eval.inference` runs the model over a batch (one prediction per
pair), :mod:`~semcorr.eval.records` turns predictions into records, sums, tables and record files,
:mod:`~semcorr.eval.figures` draws from the results and the kept predictions of the qualitative pairs (it
never runs a model); this module reads the data, drives the loop and writes the outputs.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence

import torch

from . import distributed as D
from .inference import IdentityBaseline, collate_samples, load_model, predict, run_model
from .protocols import Protocol, resolve_protocol, uniform_protocol
from . import records as R
from .records import (CURVE_ALPHAS, FX, FX_BITS, MASK_METRICS, THRESH_DOC, THRESH_KINDS, accumulate, akey,
                      format_table, open_sink, read_records, summarize)

# inference (running a model) and records (their accumulation) live in their own modules; their names that
# users and tests import from here are re-exported
__all__ = ["EvalConfig", "evaluate", "collate_samples", "pair_records", "accumulate", "summarize",
           "format_table", "IdentityBaseline", "CURVE_ALPHAS", "FX_BITS", "load_model", "protocol_records",
           "FX", "MASK_METRICS", "THRESH_KINDS", "akey", "read_records", "run_model"]

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
# model + batch -> records (inference, then records)
# ----------------------------------------------------------------------------------------

def pair_records(model, batch: dict, alphas: Sequence[float], device: torch.device) -> List[dict]:
    """Run the model on a collated batch (uniform setting); one record per pair."""
    return R.pair_records(batch, predict(model, batch, None, device), None, alphas)


def protocol_records(model, batch: dict, protocol: Protocol, alphas: Sequence[float],
                     device: torch.device) -> List[dict]:
    """One record per pair of a batch from a loader at original size, evaluated under ``protocol`` (pair by
    pair, as every published script does: the inputs of a pair need not share a size)."""
    return R.pair_records(batch, predict(model, batch, protocol, device), protocol, alphas)


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
        sink = open_sink(out / "pairs" / f"pairs-rank{info.rank}.jsonl") if out is not None else None
        from tqdm import tqdm

        bar = tqdm(total=len(sampler), unit="pair", desc=f"{cfg.method}/{dataset.name}",
                   disable=not (cfg.progress and info.is_main), file=sys.stderr)
        # the qualitative figure's pairs keep their predictions: figures never run the model
        shown = list(range(min(cfg.n_qualitative, n))) if (cfg.figures and out is not None) else []
        kept: Dict[int, dict] = {}
        t0 = time.time()
        try:
            for batch in loader:
                preds = predict(model, batch, run_proto, info.device)
                kept.update((int(i), p) for i, p in zip(batch["index"], preds) if int(i) in shown)
                for rec in R.pair_records(batch, preds, run_proto, alphas):
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

                    samples = [dataset[i] for i in shown]
                    # pairs predicted by another rank or an earlier (resumed) run are predicted here
                    preds = [kept[i] if i in kept else predict(model, collate_samples([s]), run_proto,
                                                               info.device)[0] for i, s in zip(shown, samples)]
                    paths = figures.write_figures(results, samples, preds, out, kind,
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
