"""semcorr_ext: fast CPU/CUDA ops for semantic correspondence, registered in the PyTorch dispatcher.

    from semcorr_ext import ops
    corr = ops.corr4d(src_feats, tgt_feats)          # (B, Hs, Ws, Ht, Wt)

Every op is also reachable as ``torch.ops.semcorr.<name>`` (and so works with ``torch.compile``).
"""
import torch

from . import _loader

_C = _loader.load_extension()

from . import _registrations  # noqa: E402,F401  (fake + autograd kernels)
from . import nn, ops  # noqa: E402,F401
from ._loader import build_info  # noqa: E402

__all__ = ["ops", "nn", "build_info"]
__version__ = build_info()["version"]
