"""semcorr_ext.compat.hpf against HPF's published model/rhm.py and model/geometry.py (juhongm999/hpf),
re-written here from reading that code: float32 boxes and bin arithmetic as published, votes in float64."""
import math

import pytest
import torch
import torch.nn.functional as F

from semcorr_ext.compat import hpf


# ---- the published geometry and voting, re-written ----------------------------------------------------------
def published_gaussian2d(side=7):
    """geometry.gaussian2d: normalised Gaussian, sigma = side/2/2.354, float32."""
    sig_sq = (torch.tensor(float(side)) / 2 / 2.354) ** 2
    half = (side - 1) // 2
    ax = torch.arange(-half, half + 1).float()
    g = torch.exp(-(ax[None, :] ** 2 / 2 / sig_sq + ax[:, None] ** 2 / 2 / sig_sq))
    return g / g.sum()


def hyperpixel_boxes(feat_h, feat_w, jsz, rfsz, img_w, img_h):
    """geometry.receptive_fields + prune_margin(threshold=jsz): float32 (N, 4) boxes x1 y1 x2 y2."""
    ys, xs = torch.meshgrid(torch.arange(feat_h), torch.arange(feat_w), indexing="ij")
    ys, xs = ys.reshape(-1).float(), xs.reshape(-1).float()
    r = rfsz // 2
    box = torch.stack((xs * jsz - r, ys * jsz - r, xs * jsz + r, ys * jsz + r), 1)
    keep = (box[:, 0] >= -jsz) & (box[:, 1] >= -jsz) & (box[:, 2] < img_w + jsz) & (box[:, 3] < img_h + jsz)
    return box[keep]


def ref_appearance_similarity(src, tgt, cosd=3):
    src, tgt = src.double(), tgt.double()
    sim = (src @ tgt.t()) / (src.norm(dim=1)[:, None] * tgt.norm(dim=1)[None, :])
    return sim.clamp(min=0) ** cosd


def ref_rhm(src_hp, tgt_hp, hsfilter, ncells=8192):
    (src_box, src_feat, src_size), (tgt_box, tgt_feat, tgt_size) = src_hp, tgt_hp
    votes = ref_appearance_similarity(src_feat, tgt_feat)
    hs_w, hs_h = src_size[0] + tgt_size[0], src_size[1] + tgt_size[1]
    cell = math.sqrt(hs_w * hs_h / ncells)
    nbx, nby = int(hs_w / cell) + 1, int(hs_h / cell) + 1
    centre = lambda b: b[:, :2] + (b[:, 2:] - b[:, :2]) // 2  # noqa: E731  (float32, floor-halved)
    ref = torch.tensor(src_size, dtype=torch.float)
    xy = (ref - centre(src_box))[:, None, :] + centre(tgt_box)[None, :, :]  # float32, as published
    b = (xy / cell).long()
    bins = b[..., 0] + b[..., 1] * nbx
    hspace = torch.zeros(nby * nbx, dtype=torch.float64).index_add(0, bins.reshape(-1), votes.reshape(-1))
    hspace = F.conv2d(hspace.view(1, 1, nby, nbx), hsfilter.double()[None, None], padding=3).view(-1)
    return votes * hspace[bins]


def hyperpixels(gen, img_w, img_h, channels=32, jsz=16, rfsz=107):
    box = hyperpixel_boxes(img_h // jsz + 1, img_w // jsz + 1, jsz, rfsz, img_w, img_h)
    assert len(box) > 10
    feats = torch.randn(len(box), channels, generator=gen).relu()  # post-ReLU ResNet features are >= 0
    return box, feats, torch.Size([img_h, img_w])[::-1]  # HPF: img.size()[1:][::-1] = (W, H)


def test_appearance_similarity():
    gen = torch.Generator().manual_seed(0)
    src, tgt = torch.randn(30, 16, generator=gen), torch.randn(25, 16, generator=gen)
    for cosd in (3, 1):
        got = hpf.appearance_similarity(src, tgt, cosd=cosd)
        assert got.shape == (30, 25)
        torch.testing.assert_close(got.double(), ref_appearance_similarity(src, tgt, cosd), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="src_feats"):
        hpf.appearance_similarity(src, tgt[:, :8])


@pytest.mark.parametrize("hpf_filter", [True, False], ids=["hpf-gaussian", "other-7x7-filter"])
def test_rhm_agrees_with_the_published_voting(hpf_filter):
    gen = torch.Generator().manual_seed(1)
    src_hp = hyperpixels(gen, 200, 150)
    tgt_hp = hyperpixels(gen, 176, 192)
    hsfilter = published_gaussian2d(7) if hpf_filter else torch.rand(7, 7, generator=gen)
    got = hpf.rhm(src_hp, tgt_hp, hsfilter)
    ref = ref_rhm(src_hp, tgt_hp, hsfilter)
    assert got.shape == (len(src_hp[0]), len(tgt_hp[0])) and got.dtype == torch.float32
    assert ref.max() > 0
    # the voting really re-weights: not proportional to the similarity alone
    ratio = ref / ref_appearance_similarity(src_hp[1], tgt_hp[1]).clamp(min=1e-12)
    assert ratio.max() > 2 * ratio[ratio > 0].min()
    torch.testing.assert_close(got.double(), ref, atol=1e-5 * float(ref.max()), rtol=1e-5)


def test_rhm_backward_and_errors():
    gen = torch.Generator().manual_seed(2)
    box, feats, size = hyperpixels(gen, 96, 80, channels=8, jsz=8, rfsz=35)
    feats = feats.double().requires_grad_()
    out = hpf.rhm((box, feats, size), (box, feats.detach() + 0.1, size), published_gaussian2d(7))
    out.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="hsfilter"):
        hpf.rhm((box, feats, size), (box, feats, size), torch.ones(6, 6))
