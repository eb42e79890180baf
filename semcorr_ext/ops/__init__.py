"""The public ops. Each is a thin, documented wrapper over ``torch.ops.semcorr.<name>``."""
from .correlation import corr4d, mutual_matching

__all__ = ["corr4d", "mutual_matching"]
