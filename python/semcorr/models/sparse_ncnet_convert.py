"""Sparse NC-Net's published checkpoint -> the state dict of :class:`semcorr.models.sparse_ncnet.SparseNCNet`.

What the published ``train.py`` (ignacio-rocco/sparse-ncnet) saves with ``torch.save``::

    {"epoch": int, "args": argparse.Namespace (ncons_kernel_sizes, ncons_channels, k, symmetric_mode, bn,
     feature_extraction_cnn, ...), "state_dict": ImMatchNet.state_dict(), "best_test_loss": numpy.float64,
     "optimizer": Adam state dict, "train_loss": numpy array, "test_loss": numpy array}

``state_dict`` holds ``FeatureExtraction.model.<i>.*`` (torchvision ResNet-101 up to layer3 as
``nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3)``) and the consensus
``NeighConsensus.conv.<2i+1>.kernel`` / ``.bias``: ``conv`` is ``nn.Sequential(MinkowskiReLU, conv, ReLU, conv,
ReLU, ...)``, so the i-th convolution sits at index ``2i + 1``.

MinkowskiEngine (0.4.x, what the published code was written against: ``has_bias=``, ``coords_man``) stores a
convolution as ``kernel`` of shape ``(K, Cin, Cout)`` (``(Cin, Cout)`` for a 1x1x1x1 kernel, applied as a
matrix product) and ``bias`` of shape ``(1, Cout)``. Kernel row ``o`` multiplies the input found at ``out_coord
+ offset_o`` (a cross-correlation). ``offset_o`` enumerates ME's HYPERCUBE region (``src/region.cpp``,
``RegionIterator::operator++``): the FIRST spatial axis varies fastest, each from ``-(k_d // 2)`` to ``k_d //
2`` for odd ``k_d``. Coordinates are batch-first ``(b, x1..x4)``; Sparse NC-Net passes ``(b, iA, jA, iB, jB)``,
the order of our ``(b, i, j, k, l)``. Our :class:`semcorr_ext.nn.SparseConv4d` weight is ``(Cout, Cin, k1, k2,
k3, k4)`` with the LAST axis fastest, so the conversion reverses the axis order of the kernel index.
"""
import os
from collections import OrderedDict
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import torch

from semcorr.checkpoints import CheckpointError, load_checkpoint, rename_prefix, unwrap_state_dict

# the same FeatureExtraction.model layout as NC-Net's ImMatchNet (Sequential(conv1, bn1, relu, maxpool, layer1,
# layer2, layer3)): share NC-Net's table of its module indices -> semcorr.backbones.ResNetFeatures names
from .ncnet import _NCNET_BACKBONE_PREFIXES as _BACKBONE_PREFIXES

__all__ = ["me_kernel_offsets", "me_kernel_to_weight", "weight_to_me_kernel", "convert_sparse_ncnet_state_dict",
           "read_sparse_ncnet_checkpoint", "SparseNCNetConfig", "consensus_layout"]


def _kernel_size4(kernel_size) -> Tuple[int, int, int, int]:
    ks = (int(kernel_size),) * 4 if isinstance(kernel_size, int) else tuple(int(k) for k in kernel_size)
    if len(ks) != 4:
        raise ValueError("kernel_size must be an int or 4 ints, got %r" % (kernel_size,))
    return ks


def me_kernel_offsets(kernel_size) -> torch.Tensor:
    """(K, 4) int64: the 4D offset of each row of a MinkowskiEngine 0.4 HYPERCUBE kernel, in ME's order (first
    axis fastest; odd sizes centred, even sizes from 0 to k - 1 as ME's ``Region::set_bounds``)."""
    ks = _kernel_size4(kernel_size)
    axes = [torch.arange(k) - (k // 2 if k % 2 else 0) for k in ks]
    # meshgrid over the axes in reverse order, C order: the last grid axis (= first spatial axis) is fastest
    grids = torch.meshgrid(*axes[::-1], indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids[::-1]], 1)


def me_kernel_to_weight(kernel: torch.Tensor, kernel_size) -> torch.Tensor:
    """A MinkowskiEngine convolution ``kernel`` ``(K, Cin, Cout)`` (or ``(Cin, Cout)`` when K = 1) -> our
    :class:`~semcorr_ext.nn.SparseConv4d` weight ``(Cout, Cin, k1, k2, k3, k4)``. Odd kernel sizes only (ME
    does not centre even kernels; our op needs a centre)."""
    ks = _kernel_size4(kernel_size)
    if any(k % 2 == 0 for k in ks):
        raise ValueError("me_kernel_to_weight: even kernel sizes %s are not centred in MinkowskiEngine; the "
                         "submanifold convolution of semcorr_ext needs odd sizes" % (ks,))
    K = ks[0] * ks[1] * ks[2] * ks[3]
    if kernel.dim() == 2 and K == 1:
        kernel = kernel.unsqueeze(0)
    if kernel.dim() != 3 or kernel.shape[0] != K:
        raise ValueError("me_kernel_to_weight: expected a kernel of shape (%d, Cin, Cout) for kernel size %s, got %s"
                         % (K, ks, tuple(kernel.shape)))
    cin, cout = kernel.shape[1:]
    # row o = a1 + k1 * (a2 + k2 * (a3 + k3 * a4)): a C-order view (k4, k3, k2, k1) of the rows
    w = kernel.reshape(ks[3], ks[2], ks[1], ks[0], cin, cout)
    return w.permute(5, 4, 3, 2, 1, 0).contiguous()


def weight_to_me_kernel(weight: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`me_kernel_to_weight`: ``(Cout, Cin, k1, k2, k3, k4)`` -> ``(K, Cin, Cout)``."""
    if weight.dim() != 6:
        raise ValueError("weight_to_me_kernel: expected (Cout, Cin, k1, k2, k3, k4), got %s" % (tuple(weight.shape),))
    cout, cin = weight.shape[:2]
    return weight.permute(5, 4, 3, 2, 1, 0).reshape(-1, cin, cout).contiguous()


class SparseNCNetConfig(dict):
    """The consensus layout and matching settings stored in a published checkpoint's ``args``: ``kernel_sizes``,
    ``channels``, ``symmetric``, ``k`` (``None`` for what the file does not say)."""


def _args_config(args: Any) -> SparseNCNetConfig:
    get = (lambda n: args.get(n)) if isinstance(args, Mapping) else (lambda n: getattr(args, n, None))
    if get("bn"):
        raise CheckpointError("Sparse NC-Net checkpoint was trained with bn=%r (MinkowskiBatchNorm in the "
                              "consensus); only the published bn=0 network is supported" % (get("bn"),))
    cnn = get("feature_extraction_cnn")
    if cnn not in (None, "resnet101"):
        raise CheckpointError("Sparse NC-Net checkpoint uses feature_extraction_cnn=%r; only the published "
                              "'resnet101' backbone is supported" % (cnn,))
    sym = get("symmetric_mode")
    return SparseNCNetConfig(kernel_sizes=get("ncons_kernel_sizes"), channels=get("ncons_channels"),
                             symmetric=None if sym is None else bool(sym), k=get("k"))


def convert_sparse_ncnet_state_dict(state: Mapping[str, torch.Tensor],
                                    kernel_sizes: Optional[Sequence[int]] = None) -> "OrderedDict[str, torch.Tensor]":
    """The published ``ImMatchNet`` state dict -> ours: ``FeatureExtraction.model.<i>.*`` -> ``backbone.*``,
    ``NeighConsensus.conv.<2i+1>.kernel`` (ME ``(K, Cin, Cout)``) -> ``consensus.layers.<i>.weight`` ``(Cout, Cin,
    k, k, k, k)`` and ``.bias`` ``(1, Cout)`` -> ``(Cout,)``. ``kernel_sizes`` (the checkpoint's
    ``ncons_kernel_sizes``) is only needed for non-hypercubic kernels; otherwise the size is ``K ** (1/4)``.
    Keys already in our layout pass through unchanged; unknown keys are kept (and reported by the loader)."""
    # ImMatchNet.get_checkpoint_parameters renames 'vgg' -> 'model' in every key (an older attribute name)
    sd = OrderedDict((k.replace("vgg", "model"), v) for k, v in unwrap_state_dict(state).items())
    conv_idx = sorted({int(k.split(".")[2]) for k in sd if k.startswith("NeighConsensus.conv.")})
    layer_of = {c: i for i, c in enumerate(conv_idx)}
    out = OrderedDict()
    for key, v in sd.items():
        if key.startswith("NeighConsensus.conv."):
            c, name = key[len("NeighConsensus.conv."):].split(".", 1)
            i = layer_of[int(c)]
            if name == "kernel":
                if kernel_sizes is not None and i < len(kernel_sizes):
                    ks = kernel_sizes[i]
                else:
                    K = v.shape[0] if v.dim() == 3 else 1
                    ks = int(round(K ** 0.25))
                    if ks ** 4 != K:
                        raise CheckpointError("%s has %d kernel rows, not a k^4 hypercube; pass kernel_sizes"
                                              % (key, K))
                out["consensus.layers.%d.weight" % i] = me_kernel_to_weight(v, ks)
            elif name == "bias":
                out["consensus.layers.%d.bias" % i] = v.reshape(-1)
            else:
                out["consensus.layers.%d.%s" % (i, name)] = v  # reported as unexpected by the loader
            continue
        out[rename_prefix(key, _BACKBONE_PREFIXES)] = v
    return out


def read_sparse_ncnet_checkpoint(path_or_state) -> Tuple[SparseNCNetConfig, "OrderedDict[str, torch.Tensor]"]:
    """A published Sparse NC-Net checkpoint (path, or the object ``torch.load`` gave) -> (its config from
    ``args``, the converted state dict). Loaded with :func:`semcorr.checkpoints.load_checkpoint`
    (``weights_only`` + the numpy/argparse allow-list), never arbitrary unpickling. A plain state dict (ours or
    the published one without the training wrapper) gives an empty config."""
    obj = load_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    cfg = SparseNCNetConfig()
    if isinstance(obj, Mapping) and "args" in obj:
        cfg = _args_config(obj["args"])
    sd = convert_sparse_ncnet_state_dict(obj, kernel_sizes=cfg.get("kernel_sizes"))
    return cfg, sd


def consensus_layout(sd: Mapping[str, torch.Tensor]) -> Tuple[List[Tuple[int, ...]], List[int]]:
    """(kernel sizes, channels) of the ``consensus.layers.<i>.weight`` tensors of a converted state dict."""
    idx = sorted(int(k.split(".")[2]) for k in sd if k.startswith("consensus.layers.") and k.endswith(".weight"))
    if idx != list(range(len(idx))):
        raise CheckpointError("Sparse NC-Net checkpoint: consensus layers %s are not numbered 0..n-1" % idx)
    ks = [tuple(int(s) for s in sd["consensus.layers.%d.weight" % i].shape[2:]) for i in idx]
    ch = [int(sd["consensus.layers.%d.weight" % i].shape[0]) for i in idx]
    return ks, ch
