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


# ---- sparse neighbourhood consensus (Sparse NC-Net) ----------------------------------------------------------
import math as _math  # noqa: E402

import torch as _torch  # noqa: E402

__all__ += ["SparseConv4d", "SparseNeighConsensus"]


def _swap_halves(coords):
    """(b, i, j, k, l) -> (b, k, l, i, j): the same points with source and target exchanged."""
    return coords[:, [0, 3, 4, 1, 2]]


def _init_like_conv3d(layer):
    """``nn.Conv3d``'s initialisation: Kaiming-uniform weight (a = sqrt(5)), bias uniform in +-1/sqrt(fan_in)."""
    nn.init.kaiming_uniform_(layer.weight, a=_math.sqrt(5))
    if layer.bias is not None:
        fan_in = layer.in_channels * _math.prod(layer.kernel_size)
        bound = 1.0 / _math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound)


class SparseConv4d(nn.Module):
    """Submanifold sparse 4D convolution layer (:func:`semcorr_ext.ops.sparse_conv4d`).

    ``forward(feats (N, Cin), coords (N, 5), kernel_map=None) -> (N, Cout)``: the output lives on the input
    coordinates. Pass a prebuilt ``kernel_map`` (:func:`semcorr_ext.ops.kernel_map4d` with this layer's kernel
    size) to share it between layers. Initialised like ``nn.Conv3d`` (Kaiming-uniform, a=sqrt(5)).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, bias=True):
        super().__init__()
        ks = (kernel_size,) * 4 if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(ks) != 4 or any(k < 1 or k % 2 == 0 for k in ks):
            raise ValueError("SparseConv4d: kernel_size must be odd (int or 4 ints), got %r" % (kernel_size,))
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, ks
        self.weight = nn.Parameter(_torch.empty(out_channels, in_channels, *ks))
        self.bias = nn.Parameter(_torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _init_like_conv3d(self)

    def forward(self, feats, coords=None, kernel_map=None):
        return ops.sparse_conv4d(feats, coords, self.weight, self.bias, kernel_map=kernel_map)

    def extra_repr(self):
        return "%d, %d, kernel_size=%s, bias=%s" % (self.in_channels, self.out_channels, self.kernel_size,
                                                    self.bias is not None)


class SparseNeighConsensus(nn.Module):
    """Sparse NC-Net's neighbourhood consensus: a stack of :class:`SparseConv4d` + ReLU on the sparse
    correlation (N points with coordinates (b, i, j, k, l), i.e. source cell (i, j) and target cell (k, l)).

    With ``symmetric`` (NC-Net's default) the output is ``net(x on coords) + net(x on swapped coords)``, where
    swapping exchanges the (i, j) and (k, l) halves: the sparse form of NC-Net's
    ``conv(x) + conv(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)``; the points keep their rows, so
    the two results add row by row.

    ``forward(feats (N, in_channels), coords (N, 5), kernel_maps=None) -> (N, channels[-1])``. Kernel maps are
    built once per call and kernel size (and direction) and reused by every layer; pass
    ``kernel_maps=self.kernel_maps(coords)`` to reuse them across calls on the same coordinates.
    """

    def __init__(self, kernel_sizes=(3, 3, 3), channels=(10, 10, 1), symmetric=True, in_channels=1):
        super().__init__()
        if len(kernel_sizes) != len(channels):
            raise ValueError("SparseNeighConsensus: kernel_sizes and channels must have the same length, got %d and %d"
                             % (len(kernel_sizes), len(channels)))
        self.symmetric = symmetric
        layers, cin = [], in_channels
        for k, c in zip(kernel_sizes, channels):
            layers.append(SparseConv4d(cin, c, k))
            cin = c
        self.layers = nn.ModuleList(layers)

    def kernel_maps(self, coords):
        """{(kernel_size, swapped): KernelMap} for every kernel size of the stack (and both directions)."""
        maps = {}
        for swapped in ((False, True) if self.symmetric else (False,)):
            c = _swap_halves(coords) if swapped else coords
            for layer in self.layers:
                key = (layer.kernel_size, swapped)
                if key not in maps:
                    maps[key] = ops.kernel_map4d(c, layer.kernel_size)
        return maps

    def _stack(self, x, maps, swapped):
        for layer in self.layers:
            x = _torch.relu(layer(x, kernel_map=maps[(layer.kernel_size, swapped)]))
        return x

    def forward(self, feats, coords, kernel_maps=None):
        maps = kernel_maps if kernel_maps is not None else self.kernel_maps(coords)
        out = self._stack(feats, maps, False)
        if self.symmetric:
            out = out + self._stack(feats, maps, True)
        return out


# ---- dense neighbourhood consensus (NC-Net) ----------------------------------------------------------------
__all__ += ["Conv4d", "NeighConsensus"]


class Conv4d(nn.Module):
    """Dense 4D convolution layer (:func:`semcorr_ext.ops.conv4d`), stride 1, zero "same" padding by default.

    Args:
        in_channels, out_channels: channels.
        kernel_size: int or 4 ints (non-isotropic allowed, e.g. ANC-Net's ``(3, 3, 5, 5)``).
        bias: learn a bias per output channel. Default True.
        padding: int or 4 ints; default ``k // 2`` per dim.

    ``weight`` has the standard layout ``(Cout, Cin, k1, k2, k3, k4)``. Initialised like ``nn.Conv3d``
    (Kaiming-uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, padding=None):
        super().__init__()
        ks = (int(kernel_size),) * 4 if isinstance(kernel_size, int) else tuple(int(k) for k in kernel_size)
        if len(ks) != 4 or any(k < 1 for k in ks):
            raise ValueError("Conv4d: kernel_size must be an int or 4 ints >= 1, got %r" % (kernel_size,))
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), ks
        self.padding = tuple(k // 2 for k in ks) if padding is None else tuple(ops.consensus._four(padding, "padding", "conv4d"))
        self.weight = nn.Parameter(_torch.empty(self.out_channels, self.in_channels, *ks))
        self.bias = nn.Parameter(_torch.empty(self.out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _init_like_conv3d(self)

    @staticmethod
    def ncnet_to_standard(weight):
        """NC-Net's stored layout ``[k1, Cout, Cin, k2, k3, k4]`` -> ``(Cout, Cin, k1, k2, k3, k4)``."""
        if weight.dim() != 6:
            raise ValueError("an NC-Net Conv4d weight is 6-D [k1, Cout, Cin, k2, k3, k4], got shape %s"
                             % (list(weight.shape),))
        return weight.permute(1, 2, 0, 3, 4, 5).contiguous()

    @staticmethod
    def standard_to_ncnet(weight):
        """``(Cout, Cin, k1, k2, k3, k4)`` -> NC-Net's ``[k1, Cout, Cin, k2, k3, k4]`` (for exporting)."""
        return weight.permute(2, 0, 1, 3, 4, 5).contiguous()

    @classmethod
    def from_ncnet_weight(cls, weight, bias=None):
        """A layer from an NC-Net checkpoint's pre-permuted weight ``[k1, Cout, Cin, k2, k3, k4]`` (+ bias)."""
        w = cls.ncnet_to_standard(weight)
        layer = cls(w.shape[1], w.shape[0], tuple(w.shape[2:]), bias=bias is not None)
        with _torch.no_grad():
            layer.weight.copy_(w)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer.to(device=weight.device, dtype=weight.dtype)

    def forward(self, x):
        return ops.conv4d(x, self.weight, self.bias, self.padding)

    def extra_repr(self):
        return "%d, %d, kernel_size=%s, padding=%s, bias=%s" % (
            self.in_channels, self.out_channels, self.kernel_size, self.padding, self.bias is not None)


class NeighConsensus(nn.Module):
    """NC-Net's neighbourhood consensus: ``Conv4d + ReLU`` layers on a (B, 1, Hs, Ws, Ht, Wt) volume.

    Args:
        kernel_sizes: kernel size of each layer (int or 4 ints). Default ``[5, 5, 5]`` (NC-Net PF-Pascal).
        channels: output channels of each layer, the last one 1. Default ``[16, 16, 1]``.
        symmetric: apply the same net to the volume and to its source/target transpose
            (``permute(0, 1, 4, 5, 2, 3)``) and add the second result transposed back, so that the filter
            is invariant to swapping the images. Default True.
        in_channels: channels of the input volume. Default 1.

    ``conv`` is an ``nn.Sequential`` laid out like NC-Net's (Conv4d at indices 0, 2, 4, ..., ReLU between),
    so NC-Net checkpoints map key by key (``conv.<2i>.weight``, after :meth:`Conv4d.ncnet_to_standard`).
    """

    def __init__(self, kernel_sizes=(5, 5, 5), channels=(16, 16, 1), symmetric=True, in_channels=1):
        super().__init__()
        if len(kernel_sizes) != len(channels) or not channels:
            raise ValueError("NeighConsensus: kernel_sizes and channels must be non-empty and of the same length, "
                             "got %r and %r" % (kernel_sizes, channels))
        self.symmetric = bool(symmetric)
        self.kernel_sizes, self.channels = list(kernel_sizes), list(channels)
        layers = []
        cin = in_channels
        for k, cout in zip(kernel_sizes, channels):
            layers += [Conv4d(cin, cout, k, bias=True), nn.ReLU(inplace=True)]
            cin = cout
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if not self.symmetric:
            return self.conv(x)
        return self.conv(x) + self.conv(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)

    def extra_repr(self):
        return "kernel_sizes=%s, channels=%s, symmetric=%s" % (self.kernel_sizes, self.channels, self.symmetric)
