"""SFNet against its released code (cvlab-yonsei/SFNet): the checkpoint ``train.py`` writes
(``{'state_dict1': net.adap_layer_feat3.state_dict(), 'state_dict2': net.adap_layer_feat4.state_dict()}``), and
``SFNet.forward(train=False)`` as a float64 reference written here from reading ``model.py``.

The released adaptation layers are 1024 / 2048 channels wide (ResNet-101 conv4 / conv5); the tests keep their
wiring (``conv{1,2}`` = Conv2d + BatchNorm2d + ReLU, residual, 5x5 / 3x3) at 16 / 32 channels on a small random
CNN so that they run in a second. The backbone is not part of SFNet's checkpoint (frozen ImageNet ResNet).
"""
import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model, untrained_line
from semcorr.models.sfnet import SFNet, TinyFeatures

C3, C4 = 16, 32


class PublishedAdapLayer(nn.Module):
    """The structure of model.py's adap_layer_feat3 / adap_layer_feat4 (channels and kernel as parameters)."""

    def __init__(self, c, k):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c, c, kernel_size=k, stride=1, padding=k // 2), nn.BatchNorm2d(c), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, kernel_size=k, stride=1, padding=k // 2), nn.BatchNorm2d(c), nn.ReLU())


def published_checkpoint(seed=0, batches_tracked=True):
    torch.manual_seed(seed)
    out = {}
    for key, c, k in (("state_dict1", C3, 5), ("state_dict2", C4, 3)):
        layer = PublishedAdapLayer(c, k)
        for m in layer.modules():
            if isinstance(m, nn.BatchNorm2d):  # trained statistics, so that a wrong BN mapping shows
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(4000)
        sd = layer.state_dict()
        if not batches_tracked:  # PyTorch < 0.4.1
            for name in [n for n in sd if n.endswith("num_batches_tracked")]:
                del sd[name]
        out[key] = sd
    return out


def _backbone(seed=1):
    torch.manual_seed(seed)
    return TinyFeatures(C3, C4).eval()


# ---- float64 reference of model.py's SFNet.forward(train=False) --------------------------------------------------

def ref_l2normalize(x, d=1):
    return x / ((x ** 2).sum(dim=d, keepdim=True) + 1e-6) ** 0.5


def ref_adap(x, sd, k):
    for blk in ("conv1", "conv2"):
        y = F.conv2d(x, sd[blk + ".0.weight"].double(), sd[blk + ".0.bias"].double(), padding=k // 2)
        y = F.batch_norm(y, sd[blk + ".1.running_mean"].double(), sd[blk + ".1.running_var"].double(),
                         sd[blk + ".1.weight"].double(), sd[blk + ".1.bias"].double(), training=False, eps=1e-5)
        x = x + F.relu(y)
    return x


def ref_matching_layer(f1, f2):
    f1, f2 = ref_l2normalize(f1), ref_l2normalize(f2)
    b, c, h1, w1 = f1.shape
    h2, w2 = f2.shape[2:]
    corr = torch.bmm(f2.view(b, c, h2 * w2).transpose(1, 2), f1.view(b, c, h1 * w1))
    return F.relu(corr.view(b, h2 * w2, h1, w1))  # channel: target, spatial grid: source


def ref_find_correspondence(corr, beta=50.0, sigma=5.0):
    b, hw, h, w = corr.shape
    dt = corr.dtype
    idx = corr.max(dim=1)[1]
    idx_y = (idx // w).view(b, 1, 1, h, w).to(dt)
    idx_x = (idx % w).view(b, 1, 1, h, w).to(dt)
    x = torch.arange(w, dtype=dt).view(1, 1, w, 1, 1).expand(b, 1, w, h, w)
    y = torch.arange(h, dtype=dt).view(1, h, 1, 1, 1).expand(b, h, 1, h, w)
    gauss = torch.exp(-((x - idx_x) ** 2 + (y - idx_y) ** 2) / (2 * sigma ** 2)).reshape(b, hw, h, w)
    c = gauss * corr
    c = c - c.max(dim=1, keepdim=True)[0]
    e = torch.exp(beta * c)
    p = (e / e.sum(dim=1, keepdim=True)).view(-1, h, w, h, w)
    gx = (p.sum(dim=1) * torch.linspace(-1, 1, w, dtype=dt).view(1, w, 1, 1)).sum(dim=1)
    gy = (p.sum(dim=2) * torch.linspace(-1, 1, h, dtype=dt).view(1, h, 1, 1)).sum(dim=1)
    return torch.stack((gx, gy), -1)  # (b, h, w, 2): the published `grid`


def ref_sfnet(ck, backbone, src, tgt):
    bb = copy.deepcopy(backbone).double().eval()
    with torch.no_grad():
        s3, s4 = bb(src.double())
        t3, t4 = bb(tgt.double())
        s3, t3 = ref_adap(s3, ck["state_dict1"], 5), ref_adap(t3, ck["state_dict1"], 5)
        s4 = F.interpolate(ref_adap(s4, ck["state_dict2"], 3), scale_factor=2, mode="bilinear", align_corners=True)
        t4 = F.interpolate(ref_adap(t4, ck["state_dict2"], 3), scale_factor=2, mode="bilinear", align_corners=True)
        c3, c4 = ref_matching_layer(s3, t3), ref_matching_layer(s4, t4)
        corr_s2t = ref_l2normalize(c3 * c4)
        b, _, h, w = c3.shape
        c3 = c3.view(b, h * w, h * w).transpose(1, 2).reshape(b, h * w, h, w)
        c4 = c4.view(b, h * w, h * w).transpose(1, 2).reshape(b, h * w, h, w)
        corr_t2s = ref_l2normalize(c3 * c4)
        return ref_find_correspondence(corr_s2t), ref_find_correspondence(corr_t2s)


# ---- tests ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batches_tracked", [True, False])
def test_train_py_file_loads_and_equals_published_forward(tmp_path, batches_tracked):
    ck = published_checkpoint(batches_tracked=batches_tracked)
    path = tmp_path / "best_checkpoint.pt"
    torch.save(ck, path)
    model = SFNet(backbone=_backbone(), channels=(C3, C4), checkpoint=str(path), image_size=None)
    assert model.untrained_parts() == []
    g = torch.Generator().manual_seed(3)
    src, tgt = torch.rand(2, 3, 96, 96, generator=g), torch.rand(2, 3, 96, 96, generator=g)
    with torch.no_grad():
        out = model.flows(src, tgt)
    ref_s2t, ref_t2s = ref_sfnet(ck, _backbone(), src, tgt)
    assert out["grid_S2T"].shape == ref_s2t.shape == (2, 6, 6, 2)
    assert float(ref_s2t.std()) > 0.05  # the flows vary: the comparison means something
    torch.testing.assert_close(out["grid_S2T"].double(), ref_s2t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["grid_T2S"].double(), ref_t2s, rtol=1e-5, atol=1e-5)


def test_full_model_state_dict_layout(tmp_path):
    ck = published_checkpoint()
    path = tmp_path / "best_checkpoint.pt"
    torch.save(ck, path)
    model = SFNet(backbone=_backbone(), channels=(C3, C4), checkpoint=str(path))
    own = model.state_dict()
    torch.testing.assert_close(own["adapt4.blocks.1.bn.running_var"], ck["state_dict2"]["conv2.1.running_var"],
                               rtol=0, atol=0)
    # a full SFNet state dict (DataParallel prefix, frozen backbone keys beside) maps the same way
    full = {"module.adap_layer_feat%d.%s" % (3 if key == "state_dict1" else 4, k): v
            for key, part in ck.items() for k, v in part.items()}
    full["module.feature_extraction.layer1.0.weight"] = torch.zeros(1)
    model2 = SFNet(backbone=_backbone(), channels=(C3, C4), checkpoint=full)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[k], v, rtol=0, atol=0)


def test_wrong_or_partial_checkpoints_name_the_keys():
    ck = published_checkpoint()
    with pytest.raises(CheckpointError, match="lacks 'state_dict2'"):
        SFNet(backbone=_backbone(), channels=(C3, C4), checkpoint={"state_dict1": ck["state_dict1"]})
    bad = copy.deepcopy(ck)
    del bad["state_dict1"]["conv2.1.running_var"]
    bad["state_dict2"]["conv3.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        SFNet(backbone=_backbone(), channels=(C3, C4), checkpoint=bad)
    assert "missing keys: adapt3.blocks.1.bn.running_var" in str(e.value)
    assert "unexpected keys: adap_layer_feat4.conv3.0.weight" in str(e.value)
    # the released 1024/2048-channel layers on a backbone of other widths: a shape error, not a silent skip
    with pytest.raises(CheckpointError, match=r"adapt3.blocks.0.conv.weight: checkpoint \(16, 16, 5, 5\), "
                                              r"model \(8, 8, 5, 5\)"):
        SFNet(backbone=TinyFeatures(8, C4), channels=(8, C4), checkpoint=ck)


def test_untrained_parts():
    with pytest.warns(UserWarning, match="UNTRAINED: sfnet has random weights in backbone, adaptation layers"):
        model = build_model("sfnet", backbone="tiny")
    assert model.untrained_parts() == ["backbone", "adaptation layers"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model("sfnet", backbone=_backbone(), channels=(C3, C4), checkpoint=published_checkpoint())
    assert untrained_line(model) is None
