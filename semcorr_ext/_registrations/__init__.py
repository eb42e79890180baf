"""Fake (meta) kernels, autograd formulas and autocast kernels of the `semcorr` ops, registered with
torch.library."""
from . import autocast, consensus, correlation, hough, patchmatch, soft_argmax, sparse  # noqa: F401
