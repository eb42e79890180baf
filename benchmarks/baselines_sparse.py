"""Sparse NC-Net's steps written plainly, as the published code does them (Rocco et al. 2020,
ignacio-rocco/sparse-ncnet): the candidate matches are the top-k of the dense cosine-similarity volume
(FeatureL2Norm + FeatureCorrelation, then torch.topk), and MinkowskiEngine's submanifold convolution equals a
dense convolution of the volume with zeros at every absent coordinate, read back at the present ones. Our ops
must agree with these numerically (float32, 1e-5 relative). Our own code, written for clarity."""
import torch

from benchmarks.baselines_correlation import ncnet_feature_correlation, ncnet_feature_l2norm

__all__ = ["sparse_ncnet_topk", "sparse_conv_via_dense", "dense_corr_topk"]


def sparse_ncnet_topk(feature_a, feature_b, k):
    """Dense normalised correlation (B, 1, Hs, Ws, Ht, Wt) -> torch.topk over the target positions.
    Returns (values, indices) (B, Hs, Ws, k)."""
    corr = ncnet_feature_correlation(ncnet_feature_l2norm(feature_a), ncnet_feature_l2norm(feature_b))
    B, _, Hs, Ws, Ht, Wt = corr.shape
    return torch.topk(corr.reshape(B, Hs, Ws, Ht * Wt), k, dim=-1)


def dense_corr_topk(src, tgt, k):
    """What the dense path costs: our dense corr4d, then torch.topk (used by the benchmark)."""
    from semcorr_ext import ops

    corr = ops.corr4d(src, tgt)
    B, Hs, Ws, Ht, Wt = corr.shape
    return torch.topk(corr.reshape(B, Hs, Ws, Ht * Wt), k, dim=-1)


def sparse_conv_via_dense(feats, coords, weight, bias=None, conv4d=None):
    """Scatter the points into a dense (B, Cin, D1, D2, D3, D4) volume (zeros elsewhere), convolve with "same"
    padding (NC-Net's Conv4d by default: a loop of conv3d over the first dim), gather the present points."""
    from benchmarks.baselines_consensus import ncnet_conv4d

    conv4d = conv4d or ncnet_conv4d
    c = coords.long()
    ext = (c.max(0).values + 1).tolist()
    B, Cin = ext[0], feats.shape[1]
    vol = feats.new_zeros(B, *ext[1:], Cin)
    vol[c[:, 0], c[:, 1], c[:, 2], c[:, 3], c[:, 4]] = feats
    vol = vol.permute(0, 5, 1, 2, 3, 4).contiguous()
    out = conv4d(vol, weight, bias)  # (B, Cout, D1..D4)
    out = out.permute(0, 2, 3, 4, 5, 1)
    return out[c[:, 0], c[:, 1], c[:, 2], c[:, 3], c[:, 4]]
