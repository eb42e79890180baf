"""NC-Net's (Rocco et al., NeurIPS 2018; ignacio-rocco/ncnet) matching modules on semcorr_ext's ops.

Replace ``from lib.conv4d import Conv4d`` / ``from lib.model import NeighConsensus, MutualMatching, maxpool4d,
FeatureCorrelation, featureL2Norm`` by imports from this module. Names, constructor arguments, attributes,
``state_dict`` keys and weight layouts are the published ones: ``Conv4d.weight`` is stored pre-permuted as
``[k1, Cout, Cin, k2, k3, k4]`` (``pre_permuted_filters=True``), ``NeighConsensus.conv`` is the same
``nn.Sequential`` of ``Conv4d`` and ``ReLU(inplace=True)``, so NC-Net checkpoints load unchanged.

What changes: the 4D convolution is one ``semcorr_ext.ops.conv4d`` call instead of a Python loop of
``conv3d``; ``MutualMatching`` and ``FeatureCorrelation`` are single fused ops; ``maxpool4d`` is one pass
instead of ``k^4`` strided slices. And the backward works: the published ``conv4d`` writes into a leaf
tensor created with ``requires_grad=True``, which current PyTorch rejects, so NC-Net could no longer be trained.

Where the published code misbehaves we do what it evidently meant, and say so in the docstring
(``maxpool4d`` with a batch > 1; integer offsets from ``maxpool4d``).
"""
from torch import nn
from torch.nn.modules.utils import _quadruple

from .. import ops
from ..nn import Conv4d as _StandardConv4d

__all__ = ["conv4d", "Conv4d", "NeighConsensus", "MutualMatching", "maxpool4d", "FeatureCorrelation",
           "featureL2Norm"]


def conv4d(data, filters, bias=None, permute_filters=True, use_half=False):
    """NC-Net's ``conv4d`` function: "same" 4D convolution of ``data (B, Cin, H1, W1, H2, W2)``.

    ``filters`` is ``(Cout, Cin, k1, k2, k3, k4)`` when ``permute_filters`` (the published default), or
    already pre-permuted ``[k1, Cout, Cin, k2, k3, k4]`` when not. As in the published loop, every dim is
    zero-padded by ``k1 // 2`` (the published code assumes cubic kernels). ``use_half`` casts data and
    weights to float16, as the published half-precision path does (float16 runs on CUDA only).
    """
    if filters.dim() != 6:
        raise ValueError("conv4d: `filters` must be 6-D, got shape %s" % (list(filters.shape),))
    weight = filters if permute_filters else _StandardConv4d.ncnet_to_standard(filters)
    if use_half:
        data, weight = data.half(), weight.half()
        bias = bias.half() if bias is not None else None
    pad = int(weight.shape[2]) // 2
    return ops.conv4d(data, weight.contiguous(), bias, (pad,) * 4)


class Conv4d(nn.Module):
    """NC-Net's ``Conv4d(in_channels, out_channels, kernel_size, bias=True, pre_permuted_filters=True)``.

    ``weight`` is ``[k1, Cout, Cin, k2, k3, k4]`` when ``pre_permuted_filters`` (NC-Net's default and its
    checkpoints' layout), else ``(Cout, Cin, k1, k2, k3, k4)``; ``bias`` is ``(Cout,)``. The published class
    derives from ``_ConvNd``; the attributes its users read are kept (``in_channels``, ``out_channels``,
    ``kernel_size``, ``stride``, ``padding`` (0: the padding is added inside ``conv4d``), ``dilation``,
    ``groups``, ``use_half``, ``pre_permuted_filters``). Initialised like the published layer
    (``_ConvNd.reset_parameters``: Kaiming-uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, pre_permuted_filters=True):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _quadruple(kernel_size)
        self.stride, self.padding, self.dilation = _quadruple(1), _quadruple(0), _quadruple(1)
        self.transposed, self.output_padding, self.groups = False, _quadruple(0), 1
        self.padding_mode = "zeros"
        std = _StandardConv4d(self.in_channels, self.out_channels, self.kernel_size, bias=bias)
        self.pre_permuted_filters = pre_permuted_filters
        w = std.weight.data
        self.weight = nn.Parameter(_StandardConv4d.standard_to_ncnet(w) if pre_permuted_filters else w)
        self.bias = std.bias
        self.use_half = False

    def forward(self, input):
        return conv4d(input, self.weight, bias=self.bias, permute_filters=not self.pre_permuted_filters,
                      use_half=self.use_half)

    def extra_repr(self):
        return "%d, %d, kernel_size=%s, bias=%s, pre_permuted_filters=%s" % (
            self.in_channels, self.out_channels, self.kernel_size, self.bias is not None, self.pre_permuted_filters)


class NeighConsensus(nn.Module):
    """NC-Net's ``NeighConsensus(use_cuda=True, kernel_sizes=[3,3,3], channels=[10,10,1], symmetric_mode=True)``.

    ``conv`` is ``nn.Sequential(Conv4d, ReLU(inplace=True), Conv4d, ...)`` (state-dict keys ``conv.0.weight``,
    ``conv.0.bias``, ``conv.2.weight``, ...), the first layer taking 1 channel. ``use_cuda`` moves it to the GPU
    as the published constructor does (and fails the same way without one: pass ``use_cuda=False`` on the
    CPU). In symmetric mode the stack runs on the volume and on its source/target transpose and the second
    result is transposed back and added.
    """

    def __init__(self, use_cuda=True, kernel_sizes=[3, 3, 3], channels=[10, 10, 1], symmetric_mode=True):
        super().__init__()
        if len(kernel_sizes) != len(channels):
            raise ValueError("NeighConsensus: `kernel_sizes` and `channels` must have the same length, got %r and %r"
                             % (kernel_sizes, channels))
        self.symmetric_mode = symmetric_mode
        self.kernel_sizes = kernel_sizes
        self.channels = channels
        layers = []
        for i, (k, ch_out) in enumerate(zip(kernel_sizes, channels)):
            layers += [Conv4d(1 if i == 0 else channels[i - 1], ch_out, k, bias=True), nn.ReLU(inplace=True)]
        self.conv = nn.Sequential(*layers)
        if use_cuda:
            self.conv.cuda()

    def forward(self, x):
        if not self.symmetric_mode:
            return self.conv(x)
        # ReLUs between the layers make this differ from one pass with filters + their transpose.
        return self.conv(x) + self.conv(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)


def MutualMatching(corr4d):
    """NC-Net's soft mutual nearest-neighbour filter of ``(B, 1, Hs, Ws, Ht, Wt)`` (eps 1e-5), one fused op."""
    return ops.mutual_matching(corr4d, eps=1e-5)


def maxpool4d(corr4d_hres, k_size=4):
    """NC-Net's relocalisation pooling: ``(corr4d, max_i, max_j, max_k, max_l)``.

    ``corr4d_hres`` is ``(B, 1, H1, W1, H2, W2)``; ``corr4d`` is the block maxima ``(B, 1, H1/k, ..)`` and
    ``max_i..max_l`` the offsets ``0 <= . < k_size`` of each maximum inside its block, same shape, int64.
    Deviations from the published function, both where it evidently did not mean what it now does: it
    stacks the blocks of all batch items along one dim, so with ``B > 1`` it takes the maximum across the
    batch (we pool each item on its own; ``B = 1``, NC-Net's evaluation setting, is identical); and on
    PyTorch >= 1.5 its ``.div`` turns the offsets into floats (we return the integers it computed on the
    PyTorch it was written for).
    """
    if corr4d_hres.dim() != 6 or corr4d_hres.shape[1] != 1:
        raise ValueError("maxpool4d: `corr4d_hres` must be (B, 1, H1, W1, H2, W2), got shape %s"
                         % (list(corr4d_hres.shape),))
    values, argmax = ops.max_pool4d(corr4d_hres, k_size)
    return (values,) + tuple(argmax[:, d:d + 1] for d in range(4))


def featureL2Norm(feature):
    """NC-Net's L2 normalisation over dim 1: ``feature / sqrt(sum(feature^2, 1) + 1e-6)``."""
    return feature / (feature.pow(2).sum(1, keepdim=True) + 1e-6).sqrt()


class FeatureCorrelation(nn.Module):
    """NC-Net's ``FeatureCorrelation(shape='3D', normalization=True)``: dot products of two feature maps.

    ``'4D'`` gives ``(B, 1, hA, wA, hB, wB)``; ``'3D'`` (CNNGeometric's layout, equal sizes) gives
    ``(B, h*w, h, w)`` indexed ``[b, row_A + h * col_A, row_B, col_B]``. With ``normalization`` the volume is
    ``featureL2Norm(ReLU(corr))`` over dim 1. The dot products are one GEMM in ``ops.corr4d`` (features are
    not normalised there: NC-Net normalises them in its feature extractor).
    """

    def __init__(self, shape="3D", normalization=True):
        super().__init__()
        if shape not in ("3D", "4D"):
            raise ValueError("FeatureCorrelation: `shape` must be '3D' or '4D', got %r" % (shape,))
        self.normalization = normalization
        self.shape = shape
        self.ReLU = nn.ReLU()

    def forward(self, feature_A, feature_B):
        corr = ops.corr4d(feature_A, feature_B, normalize=False, relu=self.normalization)
        if self.shape == "4D":
            corr = corr.unsqueeze(1)
        else:
            b, h, w = corr.shape[:3]
            if tuple(corr.shape[3:]) != (h, w):
                raise ValueError("FeatureCorrelation('3D'): feature_A and feature_B must have the same size, got "
                                 "%s and %s" % (list(feature_A.shape[2:]), list(feature_B.shape[2:])))
            corr = corr.transpose(1, 2).reshape(b, w * h, h, w)
        if self.normalization:
            corr = featureL2Norm(corr)  # the ReLU is fused into corr4d above
        return corr
