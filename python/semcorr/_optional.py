"""Importing an optional dependency with an error that names the pip extra installing it.

The extras are declared in setup.py (``EXTRAS_REQUIRE``); e.g. reading PF-PASCAL's .mat annotations needs
scipy, which ``pip install "semcorr_ext[datasets]"`` brings::

    scipy_io = optional_import("scipy.io", extra="datasets", purpose="reading PF-PASCAL annotations")
"""
import importlib
from types import ModuleType
from typing import Optional

__all__ = ["optional_import"]


def optional_import(module: str, *, extra: str, purpose: str, package: Optional[str] = None) -> ModuleType:
    """Import ``module``; if its distribution is missing, raise ModuleNotFoundError naming ``extra``.

    ``package`` is the pip name when it differs from the top-level module name. Only a missing ``module``
    itself is turned into the message: an ImportError raised inside an installed package is not hidden.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is None or e.name.split(".")[0] != top:
            raise
        pkg = package or top
        raise ModuleNotFoundError(
            "%s needs the optional dependency %r, which is not installed. Install it with "
            "`pip install \"semcorr_ext[%s]\"` (or `pip install %s`)." % (purpose, pkg, extra, pkg),
            name=e.name) from e
