"""The published algorithms, written plainly in PyTorch from the papers and their public code's behaviour
(not copied). Benchmarks time our ops against these; tests check that our ops give the same numbers.

Each function states which published implementation it mirrors.
"""
import torch


# ---- correlation -------------------------------------------------------------------------------------
def ncnet_feature_l2norm(feature, eps=1e-6):
    """NC-Net FeatureL2Norm: divide by sqrt(sum_c f^2 + eps) over the channel dim (a normalised copy)."""
    norm = torch.pow(torch.sum(torch.pow(feature, 2), 1) + eps, 0.5).unsqueeze(1).expand_as(feature)
    return torch.div(feature, norm)


def ncnet_feature_correlation(feature_a, feature_b):
    """NC-Net FeatureCorrelation (4D, source-major): bmm of the flattened maps -> (B, 1, Ha, Wa, Hb, Wb)."""
    b, c, ha, wa = feature_a.shape
    hb, wb = feature_b.shape[2:]
    fa = feature_a.reshape(b, c, ha * wa).transpose(1, 2)
    fb = feature_b.reshape(b, c, hb * wb)
    return torch.bmm(fa, fb).view(b, ha, wa, hb, wb).unsqueeze(1)


def ncnet_mutual_matching(corr4d, eps=1e-5):
    """NC-Net MutualMatching on (B, 1, Ha, Wa, Hb, Wb)."""
    b, _, fs1, fs2, fs3, fs4 = corr4d.shape
    corr_b = corr4d.view(b, fs1 * fs2, fs3, fs4)
    corr_a = corr4d.view(b, fs1, fs2, fs3 * fs4)
    b_max = torch.max(corr_b, dim=1, keepdim=True).values
    a_max = torch.max(corr_a, dim=3, keepdim=True).values
    corr_b = corr_b / (b_max + eps)
    corr_a = corr_a / (a_max + eps)
    corr_b = corr_b.view(b, 1, fs1, fs2, fs3, fs4)
    corr_a = corr_a.view(b, 1, fs1, fs2, fs3, fs4)
    return corr4d * (corr_a * corr_b)


def hpf_appearance_similarity(src_feats, tgt_feats, exp1=3):
    """HPF appearance similarity on hyperpixel features (N, C): relu(cos)^exp1, norms without eps."""
    src_norms = torch.norm(src_feats, p=2, dim=1).unsqueeze(1)
    tgt_norms = torch.norm(tgt_feats, p=2, dim=1).unsqueeze(0)
    sim = torch.matmul(src_feats, tgt_feats.t()) / torch.matmul(src_norms, tgt_norms)
    return torch.pow(torch.clamp(sim, min=0), exp1)


def unfused_corr_pipeline(src, tgt, relu=True, power=3.0, eps=1e-6):
    """The unfused normalise -> bmm -> clamp -> pow pipeline of the published HPF/NC-Net code on (B, C, H, W)
    maps: two normalised copies, the raw volume, and a new tensor per element-wise step."""
    s = ncnet_feature_l2norm(src, eps)
    t = ncnet_feature_l2norm(tgt, eps)
    corr = ncnet_feature_correlation(s, t).squeeze(1)
    if relu:
        corr = torch.clamp(corr, min=0)
    if power != 1.0:
        corr = torch.pow(corr, power)
    return corr


def sfnet_matching_layer(feature1, feature2):
    """SFNet matching layer: L2-normalise (eps 1e-6 inside the root), relu'd correlation in target-major
    layout (B, Ht*Wt, Hs, Ws)."""
    f1 = ncnet_feature_l2norm(feature1, 1e-6)
    f2 = ncnet_feature_l2norm(feature2, 1e-6)
    b, c, h1, w1 = f1.shape
    h2, w2 = f2.shape[2:]
    corr = torch.bmm(f2.reshape(b, c, h2 * w2).transpose(1, 2), f1.reshape(b, c, h1 * w1))
    return torch.relu(corr).view(b, h2 * w2, h1, w1)
