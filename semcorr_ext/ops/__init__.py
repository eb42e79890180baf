"""The public ops. Each is a thin, documented wrapper over ``torch.ops.semcorr.<name>``."""
from .consensus import conv4d, max_pool4d
from .correlation import corr4d, mutual_matching
from .hough import hough_match, hough_vote
from .patchmatch import gather_windows4d, gather_windows4d_linear, gather_windows4d_points, patchmatch_propagate, patchmatch_select
from .soft_argmax import kernel_soft_argmax
from .sparse import KernelMap, corr4d_topk, kernel_map4d, sparse_conv4d

# One family per op, the same in every tree: ops/<family>.py, reference/<family>.py, _registrations/<family>.py,
# the sections of csrc/semcorr.cpp and tests/test_emu_<family>.py (the table is in csrc/README.md).
__all__ = [
    # correlation
    "corr4d", "mutual_matching",
    # consensus (dense neighbourhood consensus)
    "conv4d", "max_pool4d",
    # sparse (sparse neighbourhood consensus: top-k correlation, kernel map, sparse 4D convolution)
    "corr4d_topk", "KernelMap", "kernel_map4d", "sparse_conv4d",
    # patchmatch
    "patchmatch_propagate", "gather_windows4d", "gather_windows4d_points", "gather_windows4d_linear", "patchmatch_select",
    # hough
    "hough_match", "hough_vote",
    # soft_argmax
    "kernel_soft_argmax",
]
