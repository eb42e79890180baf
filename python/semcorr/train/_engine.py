"""The shared training engine behind ``semcorr train ncnet|sparse-ncnet|scnet``.

A method module (``semcorr.train.<method>``) describes its recipe with a :class:`Recipe` (the model name, the loss,
optional parameter groups) and a default config file; the engine does the rest:

* **Configs as files** (:mod:`._engine_config`): ``--config NAME|PATH`` (YAML or JSON, package data in
  ``semcorr/configs/train/``) and ``--set key.sub=value`` overrides; the resolved config is stored in every checkpoint.
* **torch.distributed**: under ``torchrun`` every process joins the group (gloo on CPU, NCCL on GPU, through
  :func:`semcorr.eval.distributed.setup`) and the loss module is wrapped in ``DistributedDataParallel``; without
  torchrun it is one plain process. ``train.batch_size`` is the *global* batch: each of the W processes takes
  ``batch_size / W`` pairs of the same global batch (:class:`._engine_data.GlobalBatchSampler`, a
  ``DistributedSampler``), every loss is a mean over pairs, and DDP averages the gradients over the processes, so
  the optimizer takes the same steps whatever W (tested to 1e-6 with 2 gloo processes).
* **Model**: ``build_model(method, **model, **model_train)``; ``model_train`` holds what differs while training only
  (e.g. Sparse NC-Net's ``train.py`` runs without the relocalisation its evaluation uses); ``freeze`` lists
  submodules kept frozen and in eval mode.
* **Checkpoints** (rank 0): ``OUT/last.pt`` after every epoch (and every ``run.save_every_steps``) and
  ``OUT/best.pt`` at the lowest validation loss (NC-Net's ``is_best``). A checkpoint holds ``state_dict`` (the
  model's, loadable by ``build_model(method, checkpoint=PATH, ...)``), ``model_config`` (the ``build_model``
  keyword arguments), ``method``, ``untrained_parts`` (parts still random, e.g. a frozen random backbone),
  ``config``, ``optimizer``, ``scheduler``, ``epoch``, ``step_in_epoch``,
  ``global_step``, ``rng`` and ``history``; ``--resume PATH|auto`` restores all of it, mid-epoch included.
  Everything in it is loadable with ``torch.load(weights_only=True)``.
* **Logs** (rank 0): a tqdm bar per epoch, status lines through ``tqdm.write``, ``OUT/log.jsonl`` per epoch (train
  loss, validation loss, validation PCK), ``OUT/steps.jsonl`` per step and ``OUT/curves.png``.
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import nn

from . import _engine_config as C
from . import _engine_data as data
from ._engine_log import append_jsonl, plot_curves, read_jsonl

__all__ = ["Recipe", "add_engine_arguments", "resolve_config", "train", "run", "build_trained",
           "set_train_mode"]


@dataclasses.dataclass
class Recipe:
    """What a method contributes to the engine.

    Attributes:
        name: the model name of ``build_model`` (``"ncnet"``).
        default_config: stem of the config file used when ``--config`` is not given.
        loss: ``loss(model, batch, cfg) -> {"loss": scalar tensor, other terms...}``; the loss must be a mean over
            the pairs of ``batch`` (the engine's equal-steps guarantee rests on it).
        partner_fields: sample fields of the next pair of the global batch that ``loss`` needs
            (``("src_img",)`` for NC-Net's negatives), given to it as ``batch["partner_<field>"]``.
        param_groups: ``param_groups(model, cfg) -> list of torch.optim parameter groups``; default: every
            parameter that is not frozen, in one group.
        on_epoch_start: ``on_epoch_start(optimizer, epoch, cfg)``, e.g. to reset momentum (SCNet).
        build: ``build(cfg) -> model``; default ``build_model(name, **cfg["model"], **cfg["model_train"])``.
        build_data: ``build_data(spec) -> Dataset`` for the ``data.train`` / ``data.val`` entries; default
            :func:`._engine_data.build_pair_dataset`.
        trained_parts: the model's part names (``mark_untrained`` vocabulary) this training updates, or a callable
            ``model -> names``; the other parts still random are saved as ``untrained_parts`` in checkpoints, so a
            model rebuilt from one says so (e.g. a frozen random backbone).
    """

    name: str
    default_config: str
    loss: Callable[[nn.Module, Dict[str, Any], Dict[str, Any]], Dict[str, torch.Tensor]]
    partner_fields: tuple = ()
    param_groups: Optional[Callable[[nn.Module, Dict[str, Any]], List[Dict[str, Any]]]] = None
    on_epoch_start: Optional[Callable[[torch.optim.Optimizer, int, Dict[str, Any]], None]] = None
    build: Optional[Callable[[Dict[str, Any]], nn.Module]] = None
    build_data: Optional[Callable[[Dict[str, Any]], Any]] = None
    trained_parts: Any = ()


# --------------------------------------------------------------------------------------------------------
# command line


def add_engine_arguments(p: argparse.ArgumentParser, default_config: str) -> argparse.ArgumentParser:
    """The options every engine-based ``semcorr train METHOD`` takes."""
    p.add_argument("--config", default=default_config,
                   help="config file, or name of one in semcorr/configs/train/ (default %s; see docs/TRAINING.md)" % default_config)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set train.batch_size=4 --set data.train.root=/data/pf "
                        "(repeatable; values are YAML)")
    p.add_argument("--out", default=None, help="output folder (default: run.out of the config)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from, or 'auto' for OUT/last.pt if present")
    p.add_argument("--device", default=None, help="cpu, cuda (default: run.device of the config, else auto)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return p


def resolve_config(args) -> Dict[str, Any]:
    """The config of the parsed arguments: file + ``--set`` overrides + ``--out`` / ``--device``."""
    cfg = C.apply_overrides(C.load_config(args.config), args.overrides)
    run_cfg = cfg.setdefault("run", {}) or {}
    cfg["run"] = run_cfg
    if args.out is not None:
        run_cfg["out"] = args.out
    if args.device is not None:
        run_cfg["device"] = args.device
    return cfg


def run(recipe: Recipe, args) -> int:
    """``semcorr train METHOD`` for an engine-based method."""
    cfg = resolve_config(args)
    if args.print_config:
        print(json.dumps(cfg, indent=2, sort_keys=True))
        return 0
    train(recipe, cfg, resume=args.resume, progress=not args.no_progress)
    return 0


# --------------------------------------------------------------------------------------------------------
# model, optimizer, checkpoint helpers


def _frozen_modules(model: nn.Module, names) -> List[nn.Module]:
    mods = []
    for n in names or ():
        try:
            mods.append(model.get_submodule(n))
        except AttributeError as e:
            raise ValueError("freeze: the model has no submodule %r" % n) from e
    return mods


def set_train_mode(model: nn.Module, frozen: List[nn.Module]) -> None:
    """``model.train()`` with the frozen parts kept in eval mode (NC-Net: ``model.FeatureExtraction.eval()``: the
    frozen backbone's batch-norm statistics are not updated)."""
    model.train()
    for m in frozen:
        m.eval()


def _make_optimizer(groups, ocfg: Dict[str, Any]) -> torch.optim.Optimizer:
    ocfg = dict(ocfg or {})
    name = str(ocfg.pop("name", "adam")).lower()
    ocfg.pop("reset_momentum_each_epoch", None)
    table = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if name not in table:
        raise ValueError("optimizer.name %r unknown; choose from %s" % (name, ", ".join(table)))
    return table[name](groups, **ocfg)


def _make_scheduler(optimizer, scfg: Optional[Dict[str, Any]]):
    """Per-epoch learning-rate schedule: ``null`` (constant) or ``{name: multistep, milestones: [...], gamma}``."""
    if not scfg:
        return None
    scfg = dict(scfg)
    name = scfg.pop("name", None)
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, **scfg)
    raise ValueError("scheduler.name %r unknown; choose multistep (or null for a constant rate)" % (name,))


def build_trained(path, **overrides) -> nn.Module:
    """The model of an engine checkpoint: ``build_model(method, checkpoint=path, **overrides)``, which rebuilds
    it from ``model_config`` and the whole saved ``state_dict`` (strictly) and keeps ``untrained_parts`` marked
    (:mod:`semcorr.models.trained`)."""
    from semcorr.models import build_model
    from semcorr.models.trained import read_training_checkpoint

    saved = read_training_checkpoint(path)
    if saved is None:
        raise ValueError("%s is not a semcorr training checkpoint (no 'method' / 'model_config' / 'state_dict')"
                         % path)
    return build_model(saved["method"], checkpoint=os.fspath(path), **overrides)


def _default_build(name: str) -> Callable[[Dict[str, Any]], nn.Module]:
    def build(cfg):
        from semcorr.models import build_model

        # model_train: keyword arguments that differ while training only (Sparse NC-Net trains without the
        # relocalisation and stride change its evaluation uses); checkpoints record ``model`` alone
        return build_model(name, **{**cfg["model"], **(cfg.get("model_train") or {})})

    return build


class _LossModule(nn.Module):
    """The model and the recipe's loss as one module, so that DDP's forward sees the whole computation."""

    def __init__(self, model: nn.Module, loss: Callable, cfg: Dict[str, Any]):
        super().__init__()
        self.model, self._loss, self._cfg = model, loss, cfg

    def forward(self, batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        return self._loss(self.model, batch, self._cfg)


def _to(batch: Dict[str, Any], device) -> Dict[str, Any]:
    """Tensors, and lists of tensors (fields whose shapes differ between pairs), moved to ``device``."""
    def move(v):
        if isinstance(v, torch.Tensor):
            return v.to(device, non_blocking=True)
        if isinstance(v, list) and v and all(isinstance(x, torch.Tensor) for x in v):
            return [x.to(device, non_blocking=True) for x in v]
        return v

    return {k: move(v) for k, v in batch.items()}


def _mean_over_ranks(x: float, info) -> float:
    if not info.active:
        return float(x)
    t = torch.tensor([float(x)], dtype=torch.float64, device=info.device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def _sum_over_ranks(values: List[float], info) -> List[float]:
    if not info.active:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=info.device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def _loader(dataset, batch_sampler, workers: int):
    from semcorr.eval.runner import collate_samples

    return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=collate_samples,
                                       num_workers=int(workers))


# --------------------------------------------------------------------------------------------------------
# validation


@torch.no_grad()
def _validation_loss(loss_module: _LossModule, dataset, cfg, info, partner_fields) -> float:
    """Mean loss over the global batches of the validation pairs, in order (deterministic)."""
    tcfg = cfg["train"]
    bs = int(cfg["data"].get("val_batch_size", tcfg["batch_size"]))
    sampler = data.GlobalBatchSampler(dataset, bs, info.world_size, info.rank, shuffle=False)
    total, n = 0.0, 0
    for batch in _loader(data.PartnerDataset(dataset, partner_fields), sampler, 0):
        total += float(loss_module(_to(batch, info.device))["loss"])
        n += 1
    return _mean_over_ranks(total / max(n, 1), info)


@torch.no_grad()
def _validation_pck(model: nn.Module, dataset, pck_cfg: Dict[str, Any], info) -> float:
    """Mean over pairs of the per-pair PCK at ``alpha`` (default 0.1) with the ``thresh`` reference length
    (default ``img``), pairs sharded over the processes and summed."""
    from semcorr.eval.distributed import UnpaddedDistributedSampler
    from semcorr.eval.runner import collate_samples

    alpha, kind = float(pck_cfg.get("alpha", 0.1)), str(pck_cfg.get("thresh", "img"))
    sampler = UnpaddedDistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, sampler=sampler, collate_fn=collate_samples)
    s, n = 0.0, 0
    for batch in loader:
        matches = model.match(batch["src_img"].to(info.device), batch["tgt_img"].to(info.device))
        pred = matches.transfer_keypoints(batch["src_kps"].to(info.device)).float().cpu()
        ds, dn = data.per_pair_pck(pred, batch["tgt_kps"].float(), data.thresholds(batch, kind), alpha)
        s, n = s + ds, n + dn
    s, n = _sum_over_ranks([s, n], info)
    return s / n if n else float("nan")


# --------------------------------------------------------------------------------------------------------
# the loop


def _save(path: str, payload: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def train(recipe: Recipe, cfg: Dict[str, Any], resume: Optional[str] = None, progress: bool = True) -> Dict[str, Any]:
    """Run a training config; returns ``{"history": [...], "checkpoint": OUT/last.pt, "world_size": W}``."""
    from tqdm import tqdm

    from semcorr.checkpoints import load_checkpoint
    from semcorr.eval import distributed as D

    for section in ("model", "train", "data"):
        if not isinstance(cfg.get(section), dict):
            raise ValueError("config %s: section %r missing" % (cfg.get("_source", "?"), section))
    tcfg, dcfg, rcfg = cfg["train"], cfg["data"], cfg.get("run") or {}
    if "train" not in dcfg:
        raise ValueError("config: data.train missing")
    info = D.setup(rcfg.get("device"))
    try:
        seed = int(tcfg.get("seed", 0))
        torch.manual_seed(seed)
        model = (recipe.build or _default_build(recipe.name))(cfg).to(info.device)
        frozen = _frozen_modules(model, cfg.get("freeze"))
        for m in frozen:
            m.requires_grad_(False)
        groups = recipe.param_groups(model, cfg) if recipe.param_groups else \
            [{"params": [p for p in model.parameters() if p.requires_grad]}]
        if not any(len(g["params"]) for g in groups):
            raise ValueError("nothing to train: every parameter is frozen")
        optimizer = _make_optimizer(groups, cfg.get("optimizer"))
        scheduler = _make_scheduler(optimizer, cfg.get("scheduler"))

        build_data = recipe.build_data or data.build_pair_dataset
        train_set = build_data(dcfg["train"])
        val_set = build_data(dcfg["val"]) if dcfg.get("val") else None
        pck_set = data.build_keypoint_dataset(dcfg["pck"]) if dcfg.get("pck") else None
        if val_set is not None:  # fail now, not after the first epoch, when the validation set is too small
            data.GlobalBatchSampler(val_set, int(dcfg.get("val_batch_size", tcfg["batch_size"])), info.world_size,
                                    info.rank, shuffle=False)
        loss_module = _LossModule(model, recipe.loss, cfg)
        wrapped = loss_module
        if info.active:
            wrapped = nn.parallel.DistributedDataParallel(
                loss_module, device_ids=[info.device.index] if info.device.type == "cuda" else None,
                find_unused_parameters=bool(tcfg.get("find_unused_parameters", False)))

        out = rcfg.get("out") or os.path.join("runs", recipe.name)
        last, best = os.path.join(out, "last.pt"), os.path.join(out, "best.pt")
        epochs = int(tcfg.get("epochs", 1))
        start_epoch, step_in_epoch, global_step, history = 0, 0, 0, []
        best_val = math.inf
        if resume == "auto":
            resume = last if os.path.isfile(last) else None
        if resume:
            ck = load_checkpoint(resume)
            model.load_state_dict(ck["state_dict"])
            optimizer.load_state_dict(ck["optimizer"])
            if scheduler is not None and ck.get("scheduler") is not None:
                scheduler.load_state_dict(ck["scheduler"])
            start_epoch, step_in_epoch = int(ck["epoch"]), int(ck["step_in_epoch"])
            global_step, history = int(ck["global_step"]), list(ck.get("history", []))
            best_val = min([h["val_loss"] for h in history if h.get("val_loss") is not None] or [math.inf])
            torch.set_rng_state(ck["rng"]["torch"])
        main = info.is_main
        if main:
            os.makedirs(out, exist_ok=True)
        log_path, steps_path, png = (os.path.join(out, n) for n in ("log.jsonl", "steps.jsonl", "curves.png"))
        sampler = data.GlobalBatchSampler(train_set, int(tcfg["batch_size"]), info.world_size, info.rank,
                                          shuffle=bool(tcfg.get("shuffle", True)), seed=seed)
        train_items = data.PartnerDataset(train_set, recipe.partner_fields)
        log_every, save_every = int(rcfg.get("log_every", 0) or 0), int(rcfg.get("save_every_steps", 0) or 0)

        trained = recipe.trained_parts(model) if callable(recipe.trained_parts) else recipe.trained_parts

        def checkpoint(epoch_done: int, in_epoch: int) -> Dict[str, Any]:
            from semcorr.models.trained import training_state

            rng = {"torch": torch.get_rng_state()}
            if torch.cuda.is_available():
                rng["cuda"] = torch.cuda.get_rng_state_all()
            # method, model_config, state_dict, untrained_parts: the layout build_model(checkpoint=...) rebuilds
            out = training_state(model, recipe.name, cfg["model"], trained=trained)
            out.update({"config": cfg, "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "epoch": epoch_done, "step_in_epoch": in_epoch, "global_step": global_step,
                        "rng": rng, "history": history, "world_size": info.world_size})
            return out

        if main:
            tqdm.write("%s: %d process(es) (%s), global batch %d (%d per process), %d steps/epoch, %d epochs -> %s"
                       % (recipe.name, info.world_size, info.backend or "no process group", sampler.global_batch,
                          sampler.local_batch, sampler.steps, epochs, out), file=sys.stderr)
        for epoch in range(start_epoch, epochs):
            sampler.set_epoch(epoch)
            sampler.start_step = step_in_epoch if epoch == start_epoch else 0
            if recipe.on_epoch_start is not None:
                recipe.on_epoch_start(optimizer, epoch, cfg)
            set_train_mode(model, frozen)
            t0, losses = time.time(), []
            bar = tqdm(total=sampler.steps, initial=sampler.start_step, desc="%s %d/%d" % (recipe.name, epoch + 1,
                                                                                           epochs),
                       disable=not (main and progress), dynamic_ncols=True, file=sys.stderr)
            for batch in _loader(train_items, sampler, int(rcfg.get("workers", 0) or 0)):
                terms = wrapped(_to(batch, info.device))
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                global_step += 1
                step_in_epoch = sampler.start_step + len(losses) + 1
                loss = _mean_over_ranks(float(terms["loss"].detach()), info)
                losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss="%.4f" % loss)
                if main:
                    append_jsonl(steps_path, {"step": global_step, "epoch": epoch + 1, "loss": loss})
                    if log_every and global_step % log_every == 0:
                        tqdm.write("step %d  epoch %d  loss %.5f  lr %.2e" % (global_step, epoch + 1, loss,
                                                                               optimizer.param_groups[0]["lr"]),
                                   file=sys.stderr)
                    if save_every and global_step % save_every == 0:
                        _save(last, checkpoint(epoch, step_in_epoch))
            bar.close()
            if scheduler is not None:
                scheduler.step()
            rec = {"epoch": epoch + 1, "step": global_step, "lr": optimizer.param_groups[0]["lr"],
                   "loss": sum(losses) / len(losses) if losses else None, "time_s": round(time.time() - t0, 3),
                   "world_size": info.world_size}
            if val_set is not None:
                model.eval()
                rec["val_loss"] = _validation_loss(loss_module, val_set, cfg, info, recipe.partner_fields)
            if pck_set is not None:
                rec["val_pck"] = _validation_pck(model, pck_set, dcfg["pck"], info)
                rec["pck_alpha"] = float(dcfg["pck"].get("alpha", 0.1))
            history.append(rec)
            step_in_epoch = 0
            if main:
                append_jsonl(log_path, rec)
                plot_curves(read_jsonl(log_path), read_jsonl(steps_path), png, title="%s (%s)" % (
                    recipe.name, os.path.basename(str(cfg.get("_source", "")))))
                ck = checkpoint(epoch + 1, 0)
                _save(last, ck)
                if rec.get("val_loss") is not None and rec["val_loss"] < best_val:
                    best_val = rec["val_loss"]
                    _save(best, ck)
                tqdm.write("epoch %d: " % (epoch + 1) + "  ".join(
                    "%s %.5g" % (k, v) for k, v in rec.items() if isinstance(v, float) and k != "lr"),
                    file=sys.stderr)
        D.barrier(info)
        return {"history": history, "checkpoint": last, "world_size": info.world_size, "out": out}
    finally:
        D.cleanup(info)
