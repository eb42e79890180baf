"""The implementations compared by bench_correlation.py, importable by the memory-measuring subprocess."""
import torch

from benchmarks.baselines_correlation import ncnet_feature_correlation, ncnet_feature_l2norm, unfused_corr_pipeline
from semcorr_ext import ops


def make_inputs(B, C, H, W, normalised=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    src, tgt = torch.randn(B, C, H, W, generator=g), torch.randn(B, C, H, W, generator=g)
    if normalised:  # the GEMM floor gets already-normalised, already-flattened inputs
        src = ncnet_feature_l2norm(src).reshape(B, C, H * W).transpose(1, 2)
        tgt = ncnet_feature_l2norm(tgt).reshape(B, C, H * W)
    return src, tgt


def ours_hpf(src, tgt):
    """corr4d with HPF's epilogue: relu(cos)^3."""
    return ops.corr4d(src, tgt, relu=True, power=3.0)


def ours_ncnet(src, tgt):
    """corr4d with NC-Net's settings: cosine, no epilogue."""
    return ops.corr4d(src, tgt)


def gemm_floor(src_t, tgt):
    """bare torch.bmm on already-normalised inputs: what any implementation must at least spend."""
    return torch.bmm(src_t, tgt)


def unfused_hpf(src, tgt):
    """the published normalise -> bmm -> clamp -> pow pipeline."""
    return unfused_corr_pipeline(src, tgt, relu=True, power=3.0)


def unfused_ncnet(src, tgt):
    """NC-Net: FeatureL2Norm on both maps, then FeatureCorrelation."""
    return ncnet_feature_correlation(ncnet_feature_l2norm(src), ncnet_feature_l2norm(tgt))
