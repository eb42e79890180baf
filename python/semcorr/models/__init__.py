"""Correspondence models, looked up by name.

    from semcorr.models import build_model
    model = build_model("nn", backbone="daisy")
    model = build_model("sfnet", checkpoint="runs/sfnet/last.pt")   # a `semcorr train` checkpoint: rebuilt exactly

Every model module of this package is imported with it, so :data:`MODELS` (canonical name -> class) is complete
at import; :data:`ALIASES` maps the other accepted spellings to their canonical name (``sparse_ncnet`` ->
``sparse-ncnet``). Adding a model: write ``semcorr/models/<module>.py`` with a :class:`CorrespondenceModel`
subclass decorated with ``@register_model("<name>")`` (and a line in :func:`build_model`'s table).
"""
import importlib
import os
import pkgutil
from typing import Callable, Dict, List, Type

from .base import CorrespondenceModel, Matches, untrained_line

__all__ = ["MODELS", "ALIASES", "register_model", "register_alias", "canonical_name", "build_model",
           "available_models", "CorrespondenceModel", "Matches", "untrained_line"]

#: canonical name -> model class (or factory callable)
MODELS: Dict[str, Callable[..., CorrespondenceModel]] = {}
#: other accepted spelling -> canonical name
ALIASES: Dict[str, str] = {}


def register_model(name: str):
    """Class decorator: make a model buildable as ``build_model(name, **kwargs)``."""

    def deco(cls: Type[CorrespondenceModel]):
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError("model name %r is already registered to %r" % (name, MODELS[name]))
        MODELS[name] = cls
        if isinstance(cls, type):
            cls.name = name
        return cls

    return deco


def register_alias(alias: str, name: str) -> None:
    """Accept ``alias`` wherever the model name ``name`` is accepted (listed once, under ``name``)."""
    if alias in MODELS:
        raise ValueError("alias %r is already a model name" % alias)
    ALIASES[alias] = name


def canonical_name(name: str) -> str:
    """The registered name of ``name`` (an alias or a name); raises ``KeyError`` naming the choices."""
    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise KeyError("unknown model %r; available: %s" % (name, ", ".join(available_models())))
    return key


def _import_models() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module("%s.%s" % (__name__, info.name))


def available_models() -> List[str]:
    """Canonical names of every registered model, sorted (aliases: :data:`ALIASES`)."""
    return sorted(MODELS)


def build_model(name: str, **kwargs) -> CorrespondenceModel:
    """Instantiate the model registered as ``name`` (or an alias of it) with ``kwargs``; warns (once) when any of
    its parts has random weights (:meth:`CorrespondenceModel.untrained_parts`).

    ==============  ============================================================  ===========================
    name            model (class: its docstring lists every argument)            main arguments
    ==============  ============================================================  ===========================
    ``nn``          nearest neighbour, :class:`.nearest_neighbour.NearestNeighbour`  backbone (daisy), stride
    ``hpf``         Hyperpixel Flow, :class:`.hpf.HyperpixelFlow`                 backbone, hyperpixel_ids,
                                                                                  benchmark, weights
    ``scnet``       SCNet-A/AG/AG+, :class:`.scnet.model.SCNet`                   variant, checkpoint (.mat)
    ``ncnet``       NC-Net, :class:`.ncnet.NCNet`                                 backbone, weights, checkpoint,
                                                                                  relocalization_k
    ``sparse-ncnet``  Sparse NC-Net, :class:`.sparse_ncnet.SparseNCNet`           backbone, k, relocalization,
                    (alias ``sparse_ncnet``)                                      checkpoint
    ``pmnc``        PatchMatch NC, :class:`.pmnc.PMNC`                            backbone, image_size,
                                                                                  iterations, checkpoint
    ``sfnet``       SFNet, :class:`.sfnet.SFNet`                                  backbone, weights,
                                                                                  checkpoint, beta, sigma
    ``macosnet``    MaCoSNet, :class:`.macosnet.MaCoSNet`                         backbone, checkpoint, cascade
    ``dino``        zero-shot DINOv2, :class:`.dino.DinoMatcher`                  backbone, weights, img_size,
                                                                                  readout
    ``identity``    no-motion baseline, :class:`.identity.Identity`               stride
    ==============  ============================================================  ===========================

    ``checkpoint=PATH`` of a file written by ``semcorr train`` (a dict with ``method``, ``model_config`` and
    ``state_dict``, :mod:`semcorr.models.trained`) rebuilds the trained model exactly: the saved configuration
    (``kwargs`` given here override it) and every saved weight, random backbones included. Any other checkpoint
    goes to the model's own ``checkpoint`` argument (the published layouts).
    """
    key = canonical_name(name)
    ck = kwargs.get("checkpoint")
    if isinstance(ck, (str, os.PathLike)):
        from .trained import build_trained_model, read_training_checkpoint

        saved = read_training_checkpoint(ck)
        if saved is not None:
            overrides = {k: v for k, v in kwargs.items() if k != "checkpoint"}
            return build_trained_model(key, saved, os.fspath(ck), **overrides)
    model = MODELS[key](**kwargs)
    if isinstance(model, CorrespondenceModel):
        model.warn_if_untrained()
    return model


# Every model registers itself on import: MODELS is complete once this package is imported.
_import_models()
from .nearest_neighbour import NearestNeighbour  # noqa: E402

__all__.append("NearestNeighbour")
