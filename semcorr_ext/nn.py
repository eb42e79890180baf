"""nn.Module wrappers of the ops, for use inside models."""
from torch import nn

from . import ops

__all__ = ["Correlation4d", "MutualMatching"]


class Correlation4d(nn.Module):
    """Module form of :func:`semcorr_ext.ops.corr4d` (NC-Net's FeatureL2Norm + FeatureCorrelation by default)."""

    def __init__(self, normalize=True, relu=False, power=1.0, eps=1e-6):
        super().__init__()
        self.normalize, self.relu, self.power, self.eps = normalize, relu, power, eps

    def forward(self, src, tgt):
        return ops.corr4d(src, tgt, normalize=self.normalize, relu=self.relu, power=self.power, eps=self.eps)

    def extra_repr(self):
        return "normalize=%s, relu=%s, power=%s, eps=%s" % (self.normalize, self.relu, self.power, self.eps)


class MutualMatching(nn.Module):
    """Module form of :func:`semcorr_ext.ops.mutual_matching` (NC-Net)."""

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, corr):
        return ops.mutual_matching(corr, eps=self.eps)
