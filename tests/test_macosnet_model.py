"""MaCoSNet model (semcorr.models.macosnet) and `semcorr match --method macosnet` (its training, `semcorr train
macosnet` on the engine: tests/test_train_macosnet.py)."""
import os
import re

import pytest
import torch

from semcorr import cli
from semcorr.losses.macosnet import MaCoSNetLoss, PerceptualFeatures
from semcorr.models import available_models, build_model
from semcorr.models.base import Matches
from semcorr.models.macosnet import GeometricTransform, MaCoSNet
from semcorr_ext import flow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def test_registered_and_untrained_model_is_identity_with_masks():
    assert "macosnet" in available_models()
    model = build_model("macosnet", backbone="tiny", image_size=64)
    assert model.grid == (4, 4) and model.backbone_name == "tiny"
    assert model.untrained_parts() == ["backbone", "regressors", "decoder"]
    src, tgt = torch.rand(2, 3, 50, 70), torch.rand(2, 3, 64, 48)
    m = model.match(src, tgt)
    assert isinstance(m, Matches)
    assert m.field.shape == (2, 4, 4, 2) and m.confidence.shape == (2, 4, 4)
    assert m.src_size == (50, 70) and m.tgt_size == (64, 48)
    # regressors start at the identity: the match field is the identity field, keypoints keep their
    # relative position
    assert torch.allclose(m.field, flow.grid_coords(4, 4, (50, 70))[None].expand(2, -1, -1, -1), atol=1e-6)
    assert torch.allclose(m.extras["theta_affine"], torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, -1, -1))
    assert torch.allclose(m.extras["tps_displacement"], torch.zeros(2, 9, 2))
    masks = m.extras["masks"]
    assert masks["src"].shape == (2, 1, 50, 70) and masks["tgt"].shape == (2, 1, 64, 48)
    for v in masks.values():
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    assert (m.confidence >= 0).all()


def test_match_field_comes_from_the_predicted_transform():
    model = MaCoSNet(backbone="tiny", image_size=64, cascade=False)
    theta = torch.tensor([[0.8, -0.1, 0.05], [0.15, 0.9, -0.1]])
    with torch.no_grad():
        model.affine_regressor.linear.bias.copy_(theta.reshape(-1))  # weight 0: the output is the bias
    src, tgt = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    m = model.match(src, tgt)
    expect = flow.affine_points(theta[None], flow.grid_coords(4, 4, (64, 64)).reshape(-1, 2)).reshape(1, 4, 4, 2)
    assert torch.allclose(m.field, expect, atol=1e-6)
    assert m.extras["tps_displacement"] is None
    # keypoints inside the outer cell centres transfer exactly through the affine (in normalised coordinates)
    kps = torch.tensor([[[20.0, 30.0], [40.0, 25.0]]])
    got = m.transfer_keypoints(kps)
    want = flow.unnormalize_coords(flow.affine_points(theta[None], flow.normalize_coords(kps, (64, 64))), (64, 64))
    assert torch.allclose(got, want, atol=1e-4)


def test_cascade_composes_affine_after_tps():
    theta = torch.tensor([[[1.1, 0.0, 0.1], [0.0, 0.9, 0.0]]])
    tps = torch.zeros(1, 9, 2)
    tps[0, 4] = torch.tensor([0.2, 0.0])  # the centre control point moves right
    t = GeometricTransform(theta, tps)
    centre = t(torch.zeros(1, 1, 2))
    assert torch.allclose(centre, torch.tensor([[[1.1 * 0.2 + 0.1, 0.0]]]))
    corner = t(torch.tensor([[[-1.0, -1.0]]]))
    assert torch.allclose(corner, torch.tensor([[[-1.0, -0.9]]]), atol=1e-6)


def test_training_outputs_and_gradients_reach_every_part():
    torch.manual_seed(0)
    model = MaCoSNet(backbone="tiny", image_size=64).train()
    a, b, c = torch.rand(3, 2, 3, 64, 64).unbind(0)
    out = model.training_outputs(a, b, c)
    assert out["corr_ab"].shape == (2, 4, 4, 4, 4) and out["mask_a"].shape == (2, 1, 64, 64)
    assert out["field_ab"].shape == (2, 64, 64, 2) and out["triplet"][1].batch == 2
    every = {k: 1.0 for k in ("matching", "cycle", "trans", "contrast", "task")}  # the decoder learns from the
    total, parts = MaCoSNetLoss(PerceptualFeatures("tiny"), weights=every)(out)  # co-segmentation terms only
    total.backward()
    for name in ("affine_regressor", "tps_regressor", "decoder", "backbone"):
        g = sum(float(p.grad.abs().sum()) for p in getattr(model, name).parameters() if p.grad is not None)
        assert g > 0, name


def test_cli_match_prints_matches_and_writes_masks(tmp_path, capsys):
    out_png = tmp_path / "pair.png"
    assert cli.main(["match", "--method", "macosnet", "--backbone", "tiny", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "method:     macosnet (backbone tiny)" in out
    assert re.search(r"matches:\s+225", out)
    masks_png = tmp_path / "pair_masks.png"
    assert "masks:      %s" % masks_png in out
    assert _is_png(out_png) and _is_png(masks_png) and os.path.getsize(masks_png) > 5000


def test_resnet_backbone_is_the_default_and_missing_weights_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="torch hub cache"):
        MaCoSNet(backbone="resnet101", weights="imagenet")
    with pytest.warns(UserWarning, match="random backbone"):
        model = MaCoSNet()  # the released network: ResNet-101 to layer3, 240 px -> 15 x 15 cells
    assert model.backbone_name == "resnet101" and model.grid == (15, 15) and model.image_size == 240
    assert model.untrained_parts() == ["backbone", "regressors", "decoder"]
    assert [m.kernel_size for m in model.affine_regressor.conv if isinstance(m, torch.nn.Conv2d)] == [(7, 7), (5, 5)]
    assert model.affine_regressor.linear.in_features == 64 * 5 * 5 and model.tps_regressor.linear.out_features == 18
