"""Fake (meta) kernels and autograd formulas of the `semcorr` ops, registered with torch.library."""
from . import consensus, correlation, hough, patchmatch, soft_argmax, sparse  # noqa: F401
