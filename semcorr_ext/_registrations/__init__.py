"""Fake (meta) kernels and autograd formulas of the `semcorr` ops, registered with torch.library."""
from . import correlation  # noqa: F401
from . import hough  # noqa: F401
from . import consensus  # noqa: F401
from . import soft_argmax  # noqa: F401
from . import sparse  # noqa: F401
from . import patchmatch  # noqa: F401
