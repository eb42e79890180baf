"""Checkpoints written by ``semcorr train``: what they hold and how a model comes back from one.

A training checkpoint is a dict (``torch.save``, loadable with ``weights_only=True``) with at least

* ``method``: the model's registered name (``build_model(method, ...)``);
* ``model_config``: the ``build_model`` keyword arguments the model was built with (plain Python values);
* ``state_dict``: the model's whole ``state_dict()``: trained parts and every random part (a random ``tiny``
  backbone, random init of untrained layers), so that the rebuilt model computes exactly what the trained one did;
* optionally ``untrained_parts``: the parts that were still random when it was saved (e.g. SFNet's ``tiny``
  backbone, never trained): the rebuilt model keeps them marked so (its ``UNTRAINED`` line stays honest).

The training engine (``semcorr.train._engine``) writes this layout with more keys (optimizer, history...);
:func:`training_state` gives these fields for a training loop of its own (``semcorr train sfnet``).
"""
import inspect
import os
import warnings
from typing import Any, Dict, Optional

import torch

__all__ = ["training_state", "read_training_checkpoint", "build_trained_model", "is_training_checkpoint"]


def training_state(model, method: str, model_config: Dict[str, Any], trained=()) -> Dict[str, Any]:
    """The fields of a training checkpoint for ``model`` built as ``build_model(method, **model_config)``: a copy
    of its whole state dict on the CPU, its config and its still-random parts (its untrained parts less the
    ``trained`` ones, which this training updated)."""
    parts = [p for p in (model.untrained_parts() if hasattr(model, "untrained_parts") else ()) if p not in trained]
    return {"method": method, "model_config": dict(model_config),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "untrained_parts": parts}


def is_training_checkpoint(obj: Any) -> bool:
    """Whether a loaded checkpoint has the layout of this module."""
    return (isinstance(obj, dict) and isinstance(obj.get("method"), str) and isinstance(obj.get("model_config"), dict)
            and isinstance(obj.get("state_dict"), dict))


def read_training_checkpoint(path) -> Optional[Dict[str, Any]]:
    """The training checkpoint at ``path``, or None when the file is something else (a published layout, which
    the model's own ``checkpoint`` argument reads and reports on). The file is memory-mapped (``weights_only``,
    the allow-list of :mod:`semcorr.checkpoints`), so telling a large published file apart costs little;
    ``torch.save`` since torch 1.6 writes the zip format that mmap needs, so every ``semcorr train`` file has it."""
    from semcorr.checkpoints import SAFE_GLOBALS

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("checkpoint %s does not exist" % path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format / safely loadable file: the model's own loader reports on it
        return None
    return obj if is_training_checkpoint(obj) else None


def _accepts(cls, name: str) -> bool:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def build_trained_model(name: str, saved: Dict[str, Any], path: str = "checkpoint", **overrides):
    """Rebuild the model of a training checkpoint ``saved`` (:func:`read_training_checkpoint`) registered as
    ``name``: ``build_model(name, **model_config, **overrides)`` without reading any pretrained weights (the state
    dict holds every weight), then the saved ``state_dict`` loaded strictly
    (:func:`semcorr.checkpoints.check_keys` names missing, unexpected and mis-shaped tensors)."""
    from semcorr.checkpoints import check_keys

    from . import MODELS, canonical_name

    method = canonical_name(saved["method"])
    if method != name:
        raise ValueError("%s was written by `semcorr train %s`: build it as model %r, not %r"
                         % (path, saved["method"], method, name))
    cls = MODELS[name]
    kw = dict(saved["model_config"])
    kw.pop("checkpoint", None)  # an initialisation the saved state dict replaces
    if _accepts(cls, "weights") and "weights" not in overrides:
        kw["weights"] = None  # the saved state dict has the backbone: read no ImageNet / hub file
    kw.update(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random until the state dict below is loaded
        model = cls(**kw)
    check_keys(model.state_dict(), saved["state_dict"], "%s training checkpoint %s" % (name, path))
    model.load_state_dict(saved["state_dict"])
    if hasattr(model, "mark_trained"):
        still_random = set(saved.get("untrained_parts") or ())
        model.mark_trained(*[p for p in model.untrained_parts() if p not in still_random])
        model.warn_if_untrained()
    return model
