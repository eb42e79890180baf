"""Checks of command-line inputs, run before any model is built, each failing with one clear
:class:`semcorr.cli.CommandError` naming the argument.

Sizes mean the same in every command: a positive SIZE is a size in pixels (``match``: the longer side;
``eval --protocol uniform``: both sides of the square), ``0`` keeps the images' original sizes, anything else
(negative, or below :data:`MIN_SIZE`) is rejected; enlarging an image more than :data:`MAX_UPSCALE` times warns.
"""
import argparse
import os
import sys
from typing import Optional, Sequence, Tuple

from semcorr.cli import CommandError

__all__ = ["MIN_SIZE", "MAX_UPSCALE", "size_arg", "check_size", "check_image", "check_output", "check_device",
           "check_method", "check_model_args", "warn_upscale"]

#: the smallest image size in pixels a command accepts (smaller gives a grid of one or two cells)
MIN_SIZE = 16
#: resizing an image up by more than this factor prints a warning (the matches come from invented pixels)
MAX_UPSCALE = 4.0


def check_size(value: int, option: str = "--size") -> int:
    """``value`` if it is 0 (original size) or at least :data:`MIN_SIZE`, else a ``ValueError`` naming ``option``."""
    if value != 0 and value < MIN_SIZE:
        raise ValueError("%s %d: give a size of at least %d pixels, or 0 to keep the original size"
                         % (option, value, MIN_SIZE))
    return value


def size_arg(text: str) -> int:
    """argparse ``type`` of a SIZE option (see the module docstring)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number of pixels" % text)
    try:
        return check_size(value, "")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).strip())


def warn_upscale(what: str, hw: Sequence[int], out_hw: Sequence[int]) -> None:
    """A warning on stderr when ``what`` is enlarged more than :data:`MAX_UPSCALE` times."""
    factor = max(out_hw[0] / hw[0], out_hw[1] / hw[1])
    if factor > MAX_UPSCALE:
        print("warning: %s is upscaled %.1fx (%dx%d -> %dx%d pixels): matches on invented pixels; "
              "use a smaller --size, or --size 0 for the original size" % (what, factor, hw[0], hw[1], out_hw[0],
                                                                            out_hw[1]), file=sys.stderr)


def check_image(path: str, option: str) -> Tuple[int, int]:
    """(H, W) of the image file ``path`` (given as ``option``); a :class:`CommandError` when it is missing, a folder
    or not an image Pillow can decode (the format check reads the header, not the pixels)."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise CommandError("%s %s: no such file" % (option, path))
    if os.path.isdir(path):
        raise CommandError("%s %s: is a folder, not an image file" % (option, path))
    try:
        with Image.open(path) as im:
            w, h = im.size
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CommandError("%s %s: not an image file that can be decoded (%s)"
                           % (option, path, str(e).splitlines()[0] if str(e) else type(e).__name__))
    return h, w


def check_output(path: str, option: str, allowed: Sequence[str], default_ext: Optional[str] = None) -> str:
    """The file ``path`` that ``option`` will write: its extension must be one of ``allowed`` (without one,
    ``default_ext`` is appended, and the returned name says so), its folder must exist and be writable."""
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise CommandError("%s %s: is a folder; give a file name, e.g. %s" % (option, path, os.path.join(
            path, "matches" + (default_ext or allowed[0]))))
    root, ext = os.path.splitext(path)
    if not ext:
        if default_ext is None:
            raise CommandError("%s %s: give a file extension (%s)" % (option, path, ", ".join(allowed)))
        path, ext = path + default_ext, default_ext
    if ext.lower() not in [a.lower() for a in allowed]:
        raise CommandError("%s %s: unsupported file type %r; use one of %s" % (option, path, ext, ", ".join(allowed)))
    check_folder(os.path.dirname(path) or ".", option, path)
    return path


def check_folder(folder: str, option: str, what: Optional[str] = None) -> None:
    """A :class:`CommandError` unless ``folder`` exists and is writable."""
    what = what or folder
    if not os.path.isdir(folder):
        raise CommandError("%s %s: folder %s does not exist" % (option, what, folder))
    if not os.access(folder, os.W_OK):
        raise CommandError("%s %s: folder %s is not writable" % (option, what, folder))


def check_device(text: str):
    """``torch.device(text)``, checked to exist on this machine."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError) as e:
        raise CommandError("--device %s: not a torch device (%s); use cpu or cuda[:N]" % (text, str(e).splitlines()[0]))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CommandError("--device %s: no CUDA GPU is available here (torch %s%s); use --device cpu"
                               % (text, torch.__version__, "" if torch.version.cuda else ", a CPU-only build"))
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CommandError("--device %s: only %d CUDA device(s)" % (text, torch.cuda.device_count()))
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise CommandError("--device %s: MPS is not available here; use --device cpu" % text)
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CommandError("--device %s: unsupported device type; use cpu or cuda[:N]" % text)
    return dev


def check_method(name: str) -> str:
    """The canonical model name of ``name`` (aliases accepted); a :class:`CommandError` listing the models."""
    from semcorr.models import ALIASES, MODELS

    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise CommandError("--method %s: unknown model; choose from %s" % (name, ", ".join(sorted(MODELS))))
    return key


def check_model_args(method: str, kwargs: dict) -> None:
    """A :class:`CommandError` when the model ``method`` takes no keyword argument of ``kwargs`` (models with
    ``**kwargs`` pass them on to their backbone and accept any)."""
    import inspect

    from semcorr.models import MODELS

    try:
        params = inspect.signature(MODELS[method]).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    bad = [k for k in kwargs if k not in names]
    if bad:
        raise CommandError("--model-arg %s: model %s takes no such argument; it takes: %s"
                           % (bad[0], method, ", ".join(names)))
