"""Inference for ``semcorr eval``: run a model over collated batches and return one *prediction* per pair.

The only module of the evaluation that runs a model. Records (:mod:`semcorr.eval.records`) and figures
(:mod:`semcorr.eval.figures`) are computed from these predictions, so a pair is run through the model once.

A prediction is a dict whose keys depend on the task:

* keypoints, uniform setting: ``pred`` (K, 2) float32 transferred source keypoints in the target image
  (padding rows -1, as ``tgt_kps``);
* keypoints under a paper protocol: ``pred``, ``gt`` (N, 2) float64 and ``thresh`` ``{img, bbox, kpbox}``
  in the protocol's evaluation frame (valid keypoints only; :func:`~semcorr.eval.protocol_geometry.evaluate_pair`);
* Caltech masks, uniform setting: ``back`` (H, W, 2) float64, the target->source match of every target pixel,
  and ``transferred`` (H, W) bool, the source mask carried to the target;
* Caltech under HPF's polygon protocol: ``pred_mask`` and ``gt_mask`` (h, w) bool in the protocol's frame.
"""
from __future__ import annotations

from typing import List

import torch

from .mask_transfer import transfer_mask
from .protocols import Protocol

__all__ = ["IdentityBaseline", "load_model", "run_model", "collate_samples", "split_batch", "batch_item",
           "predict"]


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
# batches
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


def batch_item(batch: dict, i: int) -> dict:
    """Pair ``i`` of a collated batch, uncollated."""
    return {k: (v[i] if isinstance(v, (list, torch.Tensor)) else v) for k, v in batch.items()}


def split_batch(batch: dict) -> List[dict]:
    """A batch -> batches of one pair each (for images of different sizes, which do not stack)."""
    return [collate_samples([batch_item(batch, i)]) for i in range(len(batch["index"]))]


# ----------------------------------------------------------------------------------------
# predictions
# ----------------------------------------------------------------------------------------

def predict(model, batch: dict, protocol: Protocol | None, device: torch.device) -> List[dict]:
    """One prediction per pair of a collated batch (see the module doc). ``protocol``: the paper protocol
    (the loader is then at original size and the pairs run one by one, as every published script does);
    None: the uniform setting (the batch runs at once when its images stack)."""
    if protocol is not None:
        return [_protocol_prediction(model, batch_item(batch, i), protocol, device)
                for i in range(len(batch["index"]))]
    if isinstance(batch["src_img"], list) or isinstance(batch["tgt_img"], list):
        return [p for b in split_batch(batch) for p in predict(model, b, None, device)]
    if "src_mask" in batch:
        return _mask_predictions(model, batch, device)
    src, tgt = batch["src_img"].to(device), batch["tgt_img"].to(device)
    matches = run_model(model, src, tgt)
    pred = matches.transfer_keypoints(batch["src_kps"].to(device)).detach().float().cpu()
    return [{"pred": p} for p in pred]


def _protocol_prediction(model, sample: dict, protocol: Protocol, device: torch.device) -> dict:
    from .protocol_geometry import evaluate_pair, polygon_masks

    def model_fn(query, reference):
        return run_model(model, query.to(device), reference.to(device))

    if protocol.task == "polygon":            # Caltech under HPF's protocol
        pm, gm = polygon_masks(model_fn, sample, protocol)
        return {"pred_mask": pm, "gt_mask": gm}
    return evaluate_pair(model_fn, sample, protocol)


def _mask_predictions(model, batch: dict, device: torch.device) -> List[dict]:
    """Caltech: transfer the source mask to the target through target->source matches."""
    tgt, src = batch["tgt_img"].to(device), batch["src_img"].to(device)
    b, _, h, w = tgt.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack([xs, ys], -1).reshape(1, h * w, 2).expand(b, -1, -1).contiguous()
    matches = run_model(model, tgt, src)           # target -> source
    back = matches.transfer_keypoints(grid.to(device)).detach().double().cpu().reshape(b, h, w, 2)
    return [{"back": back[i], "transferred": transfer_mask(batch["src_mask"][i], back[i])} for i in range(b)]
