"""Correspondence models, looked up by name.

    from semcorr.models import build_model
    model = build_model("nn", backbone="daisy")

Adding a model: write ``semcorr/models/<module>.py`` with a :class:`CorrespondenceModel` subclass decorated
with ``@register_model("<name>")``. No central edit is needed: :func:`build_model` imports
``semcorr.models.<name>`` on first use when the name is not registered yet, and :func:`available_models`
imports every module of this package.
"""
import importlib
import pkgutil
from typing import Callable, Dict, List, Type

from .base import CorrespondenceModel, Matches, untrained_line

__all__ = ["MODELS", "register_model", "build_model", "available_models", "CorrespondenceModel", "Matches",
           "untrained_line"]

#: name -> model class (or factory callable)
MODELS: Dict[str, Callable[..., CorrespondenceModel]] = {}


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


def _import_models() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module("%s.%s" % (__name__, info.name))


def available_models() -> List[str]:
    """Names of every registered model (imports all model modules of this package)."""
    _import_models()
    return sorted(MODELS)


def build_model(name: str, **kwargs) -> CorrespondenceModel:
    """Instantiate the model registered as ``name`` with ``kwargs``; warns (once) when any of its parts has
    random weights (:meth:`CorrespondenceModel.untrained_parts`)."""
    if name not in MODELS:
        try:
            importlib.import_module("%s.%s" % (__name__, name))
        except ModuleNotFoundError as e:
            if e.name != "%s.%s" % (__name__, name):
                raise
        if name not in MODELS:
            _import_models()
    if name not in MODELS:
        raise KeyError("unknown model %r; available: %s" % (name, ", ".join(sorted(MODELS)) or "(none)"))
    model = MODELS[name](**kwargs)
    if isinstance(model, CorrespondenceModel):
        model.warn_if_untrained()
    return model


# Built-in models register themselves on import.
from . import nearest_neighbour  # noqa: E402,F401
from .nearest_neighbour import NearestNeighbour  # noqa: E402

__all__.append("NearestNeighbour")
