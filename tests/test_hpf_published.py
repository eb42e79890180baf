"""HPF end to end against its released code (juhongm999/hpf): hyperpixel extraction at the published layer ids
(``model/hpflow.py`` ``extract_intermediate_feat`` / ``extract_hyperpixel``), regularized Hough matching
(``model/rhm.py``) and keypoint transfer (``model/geometry.py`` ``predict_kps``), as a float64 reference written
here from reading that code (box and bin arithmetic in float32, as published).

HPF has no weights of its own: the backbone is an ImageNet ResNet. The test gives both sides the same random
torchvision ResNet-50 (with random BN statistics) and the published ResNet-50 PF-PASCAL ids (2, 7, 11, 12, 13).
"""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision

from semcorr.models import build_model, untrained_line
from semcorr.models.hpf import HyperpixelFlow
from conftest import resnet50_with_random_bn

IDS = (2, 7, 11, 12, 13)
JSZ = [4, 4, 4, 4, 8, 8, 8, 8, 16, 16]  # hpflow.py: jump and receptive field of the first id
RFSZ = [11, 19, 27, 35, 43, 59, 75, 91, 107, 139]


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    net = resnet50_with_random_bn(0)
    path = tmp_path_factory.mktemp("hpf") / "resnet50.pth"
    torch.save(net.state_dict(), path)
    return path


# ---- float64 reference -----------------------------------------------------------------------------------------

def ref_hyperimage(net, img, ids):
    """extract_intermediate_feat: stem, then each bottleneck by hand, its output kept *before* the final ReLU."""
    nbottlenecks = [3, 4, 6, 3]
    bottleneck_ids = [b for n in nbottlenecks for b in range(n)]
    layer_ids = [i + 1 for i, n in enumerate(nbottlenecks) for _ in range(n)]
    feats = []
    feat = net.maxpool(net.relu(net.bn1(net.conv1(img))))
    if 0 in ids:
        feats.append(feat.clone())
    for hid, (bid, lid) in enumerate(zip(bottleneck_ids, layer_ids)):
        blk = getattr(net, "layer%d" % lid)[bid]
        res = feat
        feat = blk.relu(blk.bn1(blk.conv1(feat)))
        feat = blk.relu(blk.bn2(blk.conv2(feat)))
        feat = blk.bn3(blk.conv3(feat))
        if bid == 0:
            res = blk.downsample(res)
        feat = feat + res
        if hid + 1 in ids:
            feats.append(feat.clone())
            if hid + 1 == max(ids):
                break
        feat = F.relu(feat)
    feats = [feats[0]] + [F.interpolate(f, tuple(feats[0].shape[2:]), None, "bilinear", True) for f in feats[1:]]
    return torch.cat(feats, dim=1)[0], RFSZ[ids[0]], JSZ[ids[0]]


def ref_boxes(rfsz, jsz, h, w, img_h, img_w):
    """geometry.receptive_fields + prune_margin(threshold=jsz); float32 as published."""
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    box = torch.zeros(h * w, 4)
    box[:, 0], box[:, 1] = jj * jsz - rfsz // 2, ii * jsz - rfsz // 2
    box[:, 2], box[:, 3] = jj * jsz + rfsz // 2, ii * jsz + rfsz // 2
    t = float(jsz)
    keep = (box[:, 0] >= -t) & (box[:, 1] >= -t) & (box[:, 2] < img_w + t) & (box[:, 3] < img_h + t)
    ids = torch.nonzero(keep).flatten()
    return box[ids], ids


def ref_center(box):
    return torch.stack((box[:, 0] + (box[:, 2] - box[:, 0]) // 2, box[:, 1] + (box[:, 3] - box[:, 1]) // 2), 1)


def ref_gaussian2d(side=7):
    sig_sq = (torch.tensor(float(side)) / 2 / 2.354) ** 2
    ax = torch.arange(-(side - 1) // 2, (side - 1) // 2 + 1).float()
    g = torch.exp(-(ax[None, :] ** 2 / 2 / sig_sq + ax[:, None] ** 2 / 2 / sig_sq))
    return g / g.sum()


def ref_rhm(src_feats, tgt_feats, src_box, tgt_box, src_wh, tgt_wh, ncells=8192):
    sim = src_feats @ tgt_feats.t() / (src_feats.norm(dim=1)[:, None] @ tgt_feats.norm(dim=1)[None, :])
    votes = sim.clamp(min=0) ** 3
    hs_w, hs_h = src_wh[0] + tgt_wh[0], src_wh[1] + tgt_wh[1]
    cell = math.sqrt((hs_w * hs_h) / ncells)
    nx, ny = int(hs_w / cell) + 1, int(hs_h / cell) + 1
    xy_vote = (torch.tensor(src_wh, dtype=torch.float)[None] - ref_center(src_box))[:, :, None] + \
        ref_center(tgt_box).t()[None]
    bins = (xy_vote / cell).long()
    bins = bins[:, 0] + bins[:, 1] * nx
    hspace = torch.zeros(ny * nx, dtype=votes.dtype).index_add(0, bins.reshape(-1), votes.reshape(-1))
    hspace = F.conv2d(hspace.view(1, 1, ny, nx), ref_gaussian2d(7).to(votes.dtype)[None, None], padding=3).view(-1)
    return votes * hspace[bins.reshape(-1)].view_as(votes)


def ref_predict_kps(src_box, tgt_box, kps, conf):
    """geometry.predict_kps: mean over the source boxes covering a keypoint of tgt top-left + (kp - src top-left)."""
    best = conf.max(dim=1)[1]
    inside = (kps[:, None, 0] >= src_box[None, :, 0]) & (kps[:, None, 1] >= src_box[None, :, 1]) & \
             (kps[:, None, 0] <= src_box[None, :, 2]) & (kps[:, None, 1] <= src_box[None, :, 3])
    out = []
    for n in range(len(kps)):
        nb = torch.nonzero(inside[n]).flatten()
        out.append((tgt_box[best[nb], :2] + kps[n] - src_box[nb, :2]).sum(0) / len(nb))
    return torch.stack(out)


def ref_hpf(resnet_path, src, tgt):
    net = torchvision.models.resnet50(weights=None)
    net.load_state_dict(torch.load(resnet_path, weights_only=True))
    net = net.double().eval()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    hyper = []
    with torch.no_grad():
        for img in (src, tgt):
            feats, rfsz, jsz = ref_hyperimage(net, (img.double() - mean) / std, IDS)
            box, ids = ref_boxes(rfsz, jsz, feats.shape[1], feats.shape[2], img.shape[2], img.shape[3])
            hyper.append((box, feats.reshape(feats.shape[0], -1).t()[ids], (img.shape[3], img.shape[2])))
        (sb, sf, swh), (tb, tf, twh) = hyper
        return ref_rhm(sf, tf, sb, tb, swh, twh), sb, tb


# ---- tests ------------------------------------------------------------------------------------------------------

def test_end_to_end_equals_published_pipeline(resnet_file):
    model = HyperpixelFlow(backbone="resnet50", hyperpixel_ids=IDS, weights=str(resnet_file))
    assert model.untrained_parts() == []
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.rand(1, 3, 64, 80, generator=g), torch.rand(1, 3, 72, 64, generator=g)
    m = model.match(src, tgt)
    src_box, tgt_box, best, conf = m.extras["hpf"]
    ref_conf, ref_sb, ref_tb = ref_hpf(resnet_file, src, tgt)
    assert torch.equal(src_box, ref_sb) and torch.equal(tgt_box, ref_tb)
    assert conf.shape == (1,) + tuple(ref_conf.shape) and ref_conf.shape[0] > 100
    scale = float(ref_conf.abs().max())
    assert scale > 0
    torch.testing.assert_close(conf[0].double() / scale, ref_conf / scale, rtol=1e-5, atol=1e-5)
    assert torch.equal(best[0], ref_conf.max(dim=1)[1])
    # keypoints inside the source image: HPF's transfer, exactly (same boxes, same argmax)
    kps = torch.tensor([[5.0, 7.0], [40.0, 30.0], [79.0, 63.0], [20.5, 50.25]])
    torch.testing.assert_close(m.transfer_keypoints(kps).double(), ref_predict_kps(ref_sb, ref_tb, kps.double(), ref_conf),
                               rtol=0, atol=1e-4)


def test_random_backbone_is_marked_untrained():
    with pytest.warns(UserWarning, match="UNTRAINED: hpf has random weights in backbone"):
        model = build_model("hpf", backbone="resnet50", hyperpixel_ids=(2, 5), weights=None)
    assert model.untrained_parts() == ["backbone"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # weight-free: no UNTRAINED warning
        assert untrained_line(build_model("hpf", backbone="daisy")) is None
        assert untrained_line(build_model("nn", backbone="daisy")) is None
    with pytest.warns(UserWarning, match="UNTRAINED: nn has random weights in backbone"):
        build_model("nn", backbone="resnet50", weights=None)


def test_caltech_keeps_margin_boxes(resnet_file):
    pruned = HyperpixelFlow(backbone="resnet50", weights=str(resnet_file), benchmark="pfpascal")
    kept = HyperpixelFlow(backbone="resnet50", weights=str(resnet_file), benchmark="caltech")
    b1, k1 = pruned.boxes(16, 20, (64, 80), (27, 4), "cpu")
    b2, k2 = kept.boxes(16, 20, (64, 80), (27, 4), "cpu")
    assert len(k2) == 16 * 20 and len(k1) < len(k2)
