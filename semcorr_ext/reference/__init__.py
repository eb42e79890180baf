"""Float64 pure-PyTorch references of every op: the ground truth the kernels are tested against.

Written for clarity, not speed (they materialise whatever they need). Each function has the signature
and defaults of its op in ``semcorr_ext.ops``.
"""
from .correlation import corr4d, mutual_matching

__all__ = ["corr4d", "mutual_matching"]

from .hough import hough_match, hough_vote  # noqa: E402
__all__ += ["hough_match", "hough_vote"]

from .consensus import conv4d, max_pool4d  # noqa: E402
__all__ += ["conv4d", "max_pool4d"]

from .soft_argmax import kernel_soft_argmax  # noqa: E402
__all__ += ["kernel_soft_argmax"]

from .sparse import corr4d_topk, kernel_map4d, sparse_conv4d  # noqa: E402
__all__ += ["corr4d_topk", "kernel_map4d", "sparse_conv4d"]

from .patchmatch import gather_windows4d, patchmatch_propagate, patchmatch_select  # noqa: E402
__all__ += ["patchmatch_propagate", "gather_windows4d", "patchmatch_select"]
