"""NC-Net model: the pipeline, relocalisation, the weak-supervision loss, NC-Net checkpoint loading, CLI."""
import re
from collections import OrderedDict

import pytest
import torch
from torch import nn

from benchmarks import baselines_correlation as bl_corr
from benchmarks import baselines_consensus as bl
from semcorr import cli
from semcorr.checkpoints import CheckpointError
from semcorr.losses.ncnet import match_score, weak_loss
from semcorr.models import build_model
from semcorr.models.ncnet import NCNet, convert_ncnet_state_dict


class TinyBackbone(nn.Module):
    """A 2-layer conv net (stride 4): fast features for model tests."""

    def __init__(self, c=8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, stride=2, padding=1))

    def forward(self, x):
        return self.net(x)


def images(B=2, H=24, W=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, H, W, generator=g), torch.rand(B, 3, H, W, generator=g)


def small_ncnet(**kw):
    torch.manual_seed(0)
    kw.setdefault("kernel_sizes", [3, 3])
    kw.setdefault("channels", [4, 1])
    return NCNet(backbone=TinyBackbone(), **kw)


def test_pipeline_matches_published_algorithm():
    model = small_ncnet()
    src, tgt = images()
    corr, delta, _ = model.correlation(src, tgt)
    fs, ft = model.features(src), model.features(tgt)
    c = bl_corr.ncnet_feature_correlation(bl_corr.ncnet_feature_l2norm(fs), bl_corr.ncnet_feature_l2norm(ft))
    c = bl_corr.ncnet_mutual_matching(c)
    convs = [m for m in model.consensus.conv if hasattr(m, "weight")]
    c = bl.ncnet_neigh_consensus(c, [m.weight for m in convs], [m.bias for m in convs])
    c = bl_corr.ncnet_mutual_matching(c)
    assert delta is None and corr.shape == (2, 1, 6, 7, 6, 7)
    torch.testing.assert_close(corr, c, rtol=1e-4, atol=1e-6)


def test_forward_returns_matches():
    model = small_ncnet()
    src, tgt = images()
    m = model.match(src, tgt)
    assert m.field.shape == (2, 6, 7, 2) and m.confidence.shape == (2, 6, 7)
    assert ((m.confidence > 0) & (m.confidence <= 1)).all() and m.field.abs().max() <= 1
    assert m.extras["tgt_grid"] == (6, 7) and m.extras["mutual"].dtype == torch.bool
    # identical images and an identity consensus (one 1x1x1x1 layer of weight 1): every cell matches itself
    ident = small_ncnet(kernel_sizes=[1], channels=[1])
    with torch.no_grad():
        ident.consensus.conv[0].weight.fill_(1.0)
        ident.consensus.conv[0].bias.zero_()
    m2 = ident.match(src, src)
    assert torch.equal(m2.extras["index"], torch.arange(42).reshape(1, 6, 7).expand(2, 6, 7))
    assert m2.extras["mutual"].all()


def test_relocalization():
    model = small_ncnet(relocalization_k=2)
    src, tgt = images(B=1, H=32, W=32)
    corr, delta, full = model.correlation(src, tgt)
    assert corr.shape == (1, 1, 4, 4, 4, 4) and delta.shape == (1, 4, 4, 4, 4, 4) and full == (8, 8)
    m = model.match(src, tgt)
    assert m.field.shape == (1, 4, 4, 2) and m.extras["tgt_grid"] == (8, 8)
    # each refined target lies in the pooled block of the coarse match
    from semcorr_ext import flow
    idx = m.extras["index"][0]
    centres = flow.grid_coords(8, 8, (32, 32)).reshape(-1, 2)
    for i in range(4):
        for j in range(4):
            d = (m.field[0, i, j][None] - centres).norm(dim=-1)
            cell = int(d.argmin())
            assert cell // 8 // 2 == int(idx[i, j]) // 4 and cell % 8 // 2 == int(idx[i, j]) % 4


def test_weak_loss_decreases_with_training():
    torch.manual_seed(0)
    model = small_ncnet()
    model.train()
    src, tgt = images(B=3, H=20, W=20)
    tgt = src.flip(-1) * 0.8 + 0.1 * tgt  # learnable: each target resembles its source
    opt = torch.optim.Adam(model.consensus.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        loss = weak_loss(model, src, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1e-3, losses
    with pytest.raises(ValueError, match="at least 2"):
        weak_loss(model, src[:1], tgt[:1])


def test_match_score_values():
    sharp = torch.zeros(1, 1, 2, 1, 2, 1)
    sharp[0, 0, 0, 0, 0, 0] = sharp[0, 0, 1, 0, 1, 0] = 100.0
    assert abs(float(match_score(sharp)) - 1.0) < 1e-6
    assert abs(float(match_score(torch.zeros(1, 1, 2, 1, 2, 1))) - 0.5) < 1e-6


def _ncnet_layout_state_dict(model):
    """Our model's weights written in NC-Net's published layout (what its train.py saves)."""
    sd = OrderedDict()
    rename = {"backbone.stem_conv.0.": "FeatureExtraction.model.0.", "backbone.stem_conv.1.": "FeatureExtraction.model.1.",
              "backbone.stages.layer1.": "FeatureExtraction.model.4.", "backbone.stages.layer2.": "FeatureExtraction.model.5.",
              "backbone.stages.layer3.": "FeatureExtraction.model.6."}
    for k, v in model.state_dict().items():
        if k.startswith("consensus."):
            v = v.permute(2, 0, 1, 3, 4, 5).contiguous() if v.dim() == 6 else v
            sd["NeighConsensus." + k[len("consensus."):]] = v
        else:
            for ours, theirs in rename.items():
                if k.startswith(ours):
                    sd[theirs + k[len(ours):]] = v
    return sd


def test_load_published_checkpoint_layout(tmp_path):
    torch.manual_seed(1)
    src_model = NCNet(backbone="resnet50", weights=None, kernel_sizes=[3, 5], channels=[4, 1])
    sd = _ncnet_layout_state_dict(src_model)
    assert sd["NeighConsensus.conv.0.weight"].shape == (3, 4, 1, 3, 3, 3)
    assert "FeatureExtraction.model.6.0.conv1.weight" in sd
    path = tmp_path / "ncnet_like.pth.tar"
    torch.save({"epoch": 5, "state_dict": sd}, path)
    model = build_model("ncnet", backbone="resnet50", checkpoint=str(path))
    assert model.consensus.kernel_sizes == [3, 5] and model.consensus.channels == [4, 1]
    for k, v in src_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    conv = convert_ncnet_state_dict(sd)
    assert conv["consensus.conv.2.weight"].shape == (1, 4, 5, 5, 5, 5)


def test_checkpoint_errors():
    model = small_ncnet()
    with pytest.raises(CheckpointError, match="missing keys: consensus.conv.0.weight"):
        model.load_ncnet_state_dict({"NeighConsensus.conv.0.bias": torch.zeros(4)}, with_backbone=False)
    bad = _ncnet_layout_state_dict(model)
    bad["NeighConsensus.conv.0.weight"] = torch.zeros(5, 4, 1, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"consensus.conv.0.weight: checkpoint \(4, 1, 5, 3, 3, 3\)"):
        model.load_ncnet_state_dict(bad, with_backbone=False)


def test_cli_match_ncnet(tmp_path, capsys):
    out_png = tmp_path / "m.png"
    assert cli.main(["match", "--method", "ncnet", "--size", "128", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "method:     ncnet" in out and out_png.exists()
    assert re.search(r"grid:\s+8x8 source cells -> 8x8 target cells", out)
    assert re.search(r"PCK@0.10:\s+[0-9.]+", out)
