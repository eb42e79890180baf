"""SFNet's (Lee et al., CVPR 2019; cvlab-yonsei/SFNet model.py) matching and correspondence modules on
semcorr_ext's ops.

Replace ``from model import find_correspondence, matching_layer`` by imports from this module: same class
names, constructor arguments, attributes and outputs. Neither module has parameters or buffers in its
``state_dict`` (the published ones have none either), so SFNet checkpoints load into a model using them as
before.

What changes: ``matching_layer`` is one ``ops.corr4d`` call (normalisation and ReLU fused into the GEMM);
``find_correspondence``'s kernel soft-argmax is one fused ``ops.kernel_soft_argmax`` pass (no volume-sized
Gaussian, exponentials or marginals; the backward recomputes instead of storing them).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import ops

__all__ = ["matching_layer", "find_correspondence"]


def _l2_normalize(x, d=1):
    return x / ((x ** 2).sum(dim=d, keepdim=True) + 1e-6).sqrt()


class matching_layer(nn.Module):  # noqa: N801  (the published name)
    """SFNet's ``matching_layer()``: ``forward(feature1, feature2) -> (b, h2*w2, h1, w1)``.

    ``relu(cos)`` of every source (``feature1``) and target (``feature2``) position, target-major: channel =
    target position ``y2 * w2 + x2``, spatial grid = source. Features are normalised as SFNet's
    ``L2normalize`` does (``x / sqrt(sum x^2 + 1e-6)``).
    """

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def L2normalize(self, x, d=1):  # noqa: N802
        return _l2_normalize(x, d)

    def forward(self, feature1, feature2):
        b, _, h1, w1 = feature1.shape
        h2, w2 = feature2.shape[2:]
        corr = ops.corr4d(feature1, feature2, normalize=True, relu=True, eps=1e-6)  # (b, h1, w1, h2, w2)
        return corr.permute(0, 3, 4, 1, 2).reshape(b, h2 * w2, h1, w1)


class find_correspondence(nn.Module):  # noqa: N801  (the published name)
    """SFNet's ``find_correspondence(feature_H, feature_W, beta, kernel_sigma)``.

    ``forward(corr, GT_mask=None)``: ``corr`` is SFNet's target-major volume ``(b, H*W, H, W)`` (already
    L2-normalised over dim 1 by the caller, as in SFNet.forward), ``H, W = feature_H, feature_W``. Returns
    ``(grid, flow)``: ``grid (b, H, W, 2)`` the kernel soft-argmax target position ``(x, y)`` in [-1, 1] of
    every source position, ``flow (b, 2, H, W)`` = grid minus the regular grid; with ``GT_mask (b, 1, H, W)``
    also ``smoothness (b, 2, H, W)``, SFNet's flow-gradient term (as published: the x/y central differences
    of both flow channels summed, halved, absolute, masked).

    ``beta`` is the softmax temperature (SFNet: 50) and ``kernel_sigma`` the Gaussian's sigma in target cells
    (SFNet: 5). ``beta=None`` is the discrete argmax (the published branch then fails on a 3-D ``permute``; here
    it returns the grid it computes). The published constant tensors are kept as attributes (non-persistent
    buffers: they follow ``.to()`` and stay out of the ``state_dict``, like the published plain attributes).
    """

    def __init__(self, feature_H, feature_W, beta, kernel_sigma):  # noqa: N803
        super().__init__()
        if int(feature_H) < 2 or int(feature_W) < 2:
            raise ValueError("find_correspondence: `feature_H` and `feature_W` must be >= 2, got %r, %r"
                             % (feature_H, feature_W))
        self.beta = beta
        self.kernel_sigma = kernel_sigma
        self.feature_H, self.feature_W = int(feature_H), int(feature_W)
        f32 = dict(dtype=torch.float)
        grid_X, grid_Y = np.meshgrid(np.linspace(-1, 1, feature_W), np.linspace(-1, 1, feature_H))
        consts = {
            "grid_X": torch.tensor(grid_X, **f32), "grid_Y": torch.tensor(grid_Y, **f32),  # (H, W) regular grid
            # central-difference kernels over both flow channels (SFNet's smoothness term)
            "dx_kernel": torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 2, 1, 3),
            "dy_kernel": torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 3, 1).expand(1, 2, 3, 1),
            "x": torch.arange(feature_W, **f32), "y": torch.arange(feature_H, **f32),
            "x_normal": torch.tensor(np.linspace(-1, 1, feature_W), **f32),
            "y_normal": torch.tensor(np.linspace(-1, 1, feature_H), **f32),
        }
        for name, value in consts.items():
            self.register_buffer(name, value, persistent=False)

    def _check(self, corr):
        H, W = self.feature_H, self.feature_W
        if corr.dim() != 4 or tuple(corr.shape[1:]) != (H * W, H, W):
            raise ValueError("find_correspondence: `corr` must be (b, %d, %d, %d) (feature_H*feature_W, feature_H, "
                             "feature_W), got shape %s" % (H * W, H, W, list(corr.shape)))

    def kernel_soft_argmax(self, corr):
        """``(grid_x, grid_y)``, each ``(b, 1, H, W)``: Gaussian kernel (around each source position's best
        target) times ``corr``, softmax with temperature ``beta`` over the targets, expected target x and y."""
        self._check(corr)
        b, _, h, w = corr.shape
        src_major = corr.permute(0, 2, 3, 1).reshape(b, h, w, h, w)
        xy = ops.kernel_soft_argmax(src_major, beta=float(self.beta), sigma=float(self.kernel_sigma),
                                    normalize=False)  # SFNet normalises before find_correspondence
        return xy[..., 0].unsqueeze(1), xy[..., 1].unsqueeze(1)

    def get_flow_smoothness(self, flow, GT_mask):  # noqa: N803
        dx = self.dx_kernel.to(flow.device, flow.dtype)
        dy = self.dy_kernel.to(flow.device, flow.dtype)
        flow_dx = F.conv2d(F.pad(flow, (1, 1, 0, 0)), dx) / 2
        flow_dy = F.conv2d(F.pad(flow, (0, 0, 1, 1)), dy) / 2
        return torch.cat((flow_dx.abs() * GT_mask, flow_dy.abs() * GT_mask), 1)

    def forward(self, corr, GT_mask=None):  # noqa: N803
        self._check(corr)
        b, _, h, w = corr.shape
        if self.beta is not None:
            grid_x, grid_y = self.kernel_soft_argmax(corr)
        else:  # discrete argmax
            idx = corr.argmax(dim=1, keepdim=True)
            grid_x = ((idx % w).float() / (w - 1) - 0.5) * 2
            grid_y = (torch.div(idx, w, rounding_mode="floor").float() / (h - 1) - 0.5) * 2
        grid = torch.cat((grid_x.permute(0, 2, 3, 1), grid_y.permute(0, 2, 3, 1)), 3)
        regular = torch.stack((self.grid_X, self.grid_Y)).to(grid_x.device, grid_x.dtype).unsqueeze(0)
        flow = torch.cat((grid_x, grid_y), 1) - regular
        if GT_mask is None:
            return grid, flow
        return grid, flow, self.get_flow_smoothness(flow, GT_mask)
