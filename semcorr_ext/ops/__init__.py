"""The public ops. Each is a thin, documented wrapper over ``torch.ops.semcorr.<name>``."""
from .consensus import conv4d, max_pool4d
from .correlation import corr4d, mutual_matching
from .hough import hough_match, hough_vote
from .patchmatch import gather_windows4d, gather_windows4d_linear, gather_windows4d_points, patchmatch_propagate, patchmatch_select
from .soft_argmax import kernel_soft_argmax
from .sparse import KernelMap, corr4d_topk, kernel_map4d, sparse_conv4d

__all__ = [
    # 1. correlation
    "corr4d", "corr4d_topk", "mutual_matching",
    # 2. neighbourhood consensus
    "conv4d", "max_pool4d", "KernelMap", "kernel_map4d", "sparse_conv4d",
    # 3. patchmatch
    "patchmatch_propagate", "gather_windows4d", "gather_windows4d_points", "gather_windows4d_linear", "patchmatch_select",
    # 4. hough
    "hough_match", "hough_vote",
    # 5. soft argmax
    "kernel_soft_argmax",
]
