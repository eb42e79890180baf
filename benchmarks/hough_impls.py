"""The implementations compared by bench_hough.py, importable by the memory-measuring subprocess."""
import math

import torch

from benchmarks import baselines_hough as bh
from semcorr_ext import ops

JUMP = 4  # HPF's finest hyperpixel layers have a 4-pixel jump


def make_inputs(n, seed=0):
    """n hyperpixels per image on HPF's grid geometry (centres j * 4, i * 4 of a ceil(sqrt(n))^2 grid, first n
    kept), appearance relu(cos)^3-like scores in [0, 1]. Returns (app (n, n), src_centers, tgt_centers, size)."""
    g = math.ceil(math.sqrt(n))
    boxes = bh.hpf_receptive_fields(11, JUMP, g, g)[:n]
    centers = bh.hpf_box_center(boxes)
    size = (g * JUMP, g * JUMP)  # (W, H)
    gen = torch.Generator().manual_seed(seed)
    app = torch.rand(n, n, generator=gen).pow_(3)
    return app, centers, centers.clone(), size


def ours(app, src_centers, tgt_centers, size):
    """ops.hough_match (bins on the fly, two passes, deterministic CPU votes)."""
    return ops.hough_match(app[None], src_centers[None], tgt_centers[None], size, size)


def published_rhm(app, src_centers, tgt_centers, size):
    """HPF rhm as published: materialised bin ids, per-source Hough table + index_add, conv2d, index_select."""
    return bh.hpf_rhm(app, src_centers, tgt_centers, size, size)
