"""Float64 pure-PyTorch references of every op: the ground truth the kernels are tested against.

Written for clarity, not speed (they materialise whatever they need). Each function has the signature
and defaults of its op in ``semcorr_ext.ops``.
"""
from .correlation import corr4d, mutual_matching

__all__ = ["corr4d", "mutual_matching"]
