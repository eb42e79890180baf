"""Loading checkpoint files safely, and checking their keys.

The published training scripts save more than tensors: NC-Net's ``train.py`` writes ``{epoch, args (an
argparse.Namespace), state_dict, best_test_loss (a numpy scalar), optimizer, train_loss, test_loss (numpy
arrays)}``. ``torch.load(weights_only=True)`` refuses such files; ``weights_only=False`` would run arbitrary
pickled code. :func:`load_checkpoint` unpickles with ``weights_only=True`` and an explicit allow-list of the
few numpy / argparse globals those files hold, under both the numpy 1.x (``numpy.core``) and numpy 2.x
(``numpy._core``) module names, since the published files were written with numpy 1.x.
"""
import argparse
import os
from collections import OrderedDict
from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np
import torch

__all__ = ["load_checkpoint", "SAFE_GLOBALS", "unwrap_state_dict", "rename_prefix", "check_keys", "CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint that is not what the model expects (missing / unexpected keys, wrong shapes)."""


def _numpy_globals():
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    out = [argparse.Namespace, np.ndarray, np.dtype]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [(multiarray.scalar, mod + ".scalar"), (multiarray._reconstruct, mod + "._reconstruct")]
    # numpy >= 1.25 pickles a dtype as an instance of its class in numpy.dtypes (e.g. Float64DType)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType") and isinstance(getattr(dtypes, n), type)]
    return out


#: what :func:`load_checkpoint` allows besides tensors and plain containers
SAFE_GLOBALS = _numpy_globals()


def load_checkpoint(path: "str | os.PathLike", map_location="cpu") -> Any:
    """``torch.load`` a checkpoint file with ``weights_only=True`` and :data:`SAFE_GLOBALS` allowed.

    A file that needs any other global (e.g. a pickled model object) raises a :class:`CheckpointError` that
    names the global, instead of running it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("checkpoint %s does not exist" % path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError with a long hint; keep its first line
        if type(e).__name__ != "UnpicklingError":
            raise
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln.split("WeightsUnpickler error:", 1)[1].split(". Please use")[0].strip()
                    for ln in lines if "WeightsUnpickler error:" in ln), lines[0] if lines else type(e).__name__)
        raise CheckpointError("%s cannot be loaded safely (weights_only=True, no arbitrary code is run): %s"
                              % (path, why)) from e


def unwrap_state_dict(obj: Any, keys: Iterable[str] = ("state_dict",), strip_prefix: str = "module.") -> Dict:
    """The state dict in a loaded checkpoint: the first of ``keys`` present in a dict (else the dict itself),
    with a DataParallel/DDP ``module.`` prefix removed from every key."""
    if isinstance(obj, Mapping):
        for k in keys:
            if isinstance(obj.get(k), Mapping):
                obj = obj[k]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError("expected a state dict (or a dict holding one under %s), got %s"
                              % (" / ".join(repr(k) for k in keys), type(obj).__name__))
    return OrderedDict(((k[len(strip_prefix):] if strip_prefix and k.startswith(strip_prefix) else k), v)
                       for k, v in obj.items())


def rename_prefix(key: str, prefixes: Mapping[str, str]) -> str:
    """``key`` with the first of ``prefixes`` (old -> new) it starts with replaced; unchanged if none does
    (a key of neither layout is then reported as unexpected by :func:`check_keys`)."""
    for old, new in prefixes.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def check_keys(expected: Mapping[str, torch.Tensor], got: Mapping[str, Any], what: str,
               allow_missing: Optional[Iterable[str]] = None, allow_unexpected: Optional[Iterable[str]] = None,
               ) -> None:
    """Raise a :class:`CheckpointError` naming the missing and unexpected keys and the shape mismatches of a
    state dict ``got`` against ``expected`` (a module's ``state_dict()``). Keys starting with a prefix in
    ``allow_missing`` / ``allow_unexpected`` are not reported."""
    am, au = tuple(allow_missing or ()), tuple(allow_unexpected or ())
    missing = [k for k in expected if k not in got and not k.startswith(am or ("\0",))]
    unexpected = [k for k in got if k not in expected and not k.startswith(au or ("\0",))]
    shapes = ["%s: checkpoint %s, model %s" % (k, tuple(got[k].shape), tuple(expected[k].shape))
              for k in expected if k in got and isinstance(got[k], torch.Tensor)
              and tuple(got[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return

    def listing(keys):
        return ", ".join(keys[:12]) + (" ... (%d in all)" % len(keys) if len(keys) > 12 else "")

    parts = []
    if missing:
        parts.append("missing keys: " + listing(missing))
    if unexpected:
        parts.append("unexpected keys: " + listing(unexpected))
    if shapes:
        parts.append("shape mismatches: " + listing(shapes))
    raise CheckpointError("%s checkpoint does not fit the model; %s" % (what, "; ".join(parts)))
