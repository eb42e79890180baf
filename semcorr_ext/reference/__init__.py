"""Float64 pure-PyTorch references of every op: the ground truth the kernels are tested against.

Written for clarity, not speed (they materialise whatever they need). Each function has the signature
and defaults of its op in ``semcorr_ext.ops``.
"""
from .consensus import conv4d, max_pool4d
from .correlation import corr4d, mutual_matching
from .hough import hough_match, hough_vote
from .patchmatch import gather_windows4d, gather_windows4d_linear, gather_windows4d_points, patchmatch_propagate, patchmatch_select
from .soft_argmax import kernel_soft_argmax
from .sparse import corr4d_topk, kernel_map4d, sparse_conv4d

# In the family order of semcorr_ext.ops (correlation, consensus, sparse, patchmatch, hough, soft_argmax).
__all__ = ["corr4d", "mutual_matching", "conv4d", "max_pool4d", "corr4d_topk", "kernel_map4d", "sparse_conv4d",
           "patchmatch_propagate", "gather_windows4d", "gather_windows4d_points", "gather_windows4d_linear",
           "patchmatch_select", "hough_match", "hough_vote", "kernel_soft_argmax"]
