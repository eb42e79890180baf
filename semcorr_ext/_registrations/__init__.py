"""Fake (meta) kernels and autograd formulas of the `semcorr` ops, registered with torch.library."""
from . import correlation  # noqa: F401
