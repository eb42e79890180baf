"""MaCoSNet model (semcorr.models.macosnet), its training loop (semcorr.train.macosnet) and the
`semcorr match --method macosnet` / `semcorr train macosnet` commands."""
import os
import re

import pytest
import torch

from semcorr import cli
from semcorr.checkpoints import load_checkpoint
from semcorr.losses.macosnet import MaCoSNetLoss, PerceptualFeatures
from semcorr.models import available_models, build_model
from semcorr.models.base import Matches
from semcorr.models.macosnet import GeometricTransform, MaCoSNet
from semcorr.train import macosnet as train_mod
from semcorr_ext import flow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    # these small CPU graphs are latency bound: one intra-op thread avoids oversubscription when the
    # machine is busy (2 threads measured 60x slower under load)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


def _train(tmp_path, *extra) -> int:
    """`semcorr train macosnet` on the tiny encoder at 64 px (through the CLI, as a user runs it)."""
    return cli.main(["train", "macosnet", "--backbone", "tiny", "--image-size", "64", "--batch-size", "2",
                     "--no-progress", "--out", str(tmp_path / "run"), "--log-every", "0", *extra])


def test_a_few_steps_lower_the_loss_on_a_tiny_batch(tmp_path):
    # the matching term of the affine stage alone: the cycle term is 0 at the identity start (the sum first rises),
    # and the released TPS stage drops the cells whose composition touches the grid border, which on a 4 x 4 grid
    # is most of them and flips as the transform moves; BatchNorm in eval mode as the released loop.
    # measured -0.097 -> -0.099 -> -0.102 -> -0.105 -> -0.108
    assert _train(tmp_path, "--steps", "5", "--overfit", "--lr", "1e-4", "--w-cycle", "0", "--no-cascade",
                  "--save-every", "0") == 0
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    h = ckpt["history"]
    assert ckpt["step"] == 5 and len(h) == 5
    assert h[-1] < h[0] - 0.008, h
    assert all(x > y for x, y in zip(h, h[1:])), h


def test_train_checkpoint_resume_and_load_for_matching(tmp_path, capsys):
    assert _train(tmp_path, "--steps", "2", "--save-every", "1") == 0
    path = tmp_path / "run" / "last.pt"
    first = load_checkpoint(path)
    assert first["step"] == 2 and len(first["history"]) == 2
    assert first["config"]["backbone"] == "tiny" and first["config"]["image_size"] == 64
    assert _train(tmp_path, "--steps", "3", "--resume", "auto") == 0
    assert "resumed from" in capsys.readouterr().out
    second = load_checkpoint(path)
    assert second["step"] == 3 and second["history"][:2] == first["history"]
    # the checkpoint rebuilds the model with its configuration and trained weights
    model = build_model("macosnet", checkpoint=str(path))
    assert model.image_size == 64 and model.untrained_parts() == []
    sd = model.state_dict()
    for k, v in second["model"].items():
        assert torch.equal(sd[k], v), k
    m = model.match(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert m.field.shape == (1, 4, 4, 2)


def test_pair_batcher_groups_categories_for_triplets():
    b = train_mod.PairBatcher("sample", 4, 32, seed=0)
    img_a, img_b, img_c, has_c, cats = b.next()
    assert img_a.shape == img_b.shape == img_c.shape == (4, 3, 32, 32)
    assert cats[0] == cats[1] and cats[2] == cats[3] and bool(has_c.all())
    assert torch.equal(img_c[0], img_a[1]) and torch.equal(img_c[1], img_a[0])
    # odd batch: the last pair has no partner -> no triplet for it
    _, _, _, has_c, cats = train_mod.PairBatcher("sample", 3, 32, seed=1).next()
    assert has_c.tolist() == [True, True, False] or cats[2] in cats[:2]


def test_pair_batcher_on_a_dataset():
    from semcorr.data.synthetic import SyntheticPairs

    ds = SyntheticPairs(size=32, images=("astronaut", "coffee"), warps=("affine",), repeats=2, stereo=False)
    img_a, img_b, img_c, has_c, cats = train_mod.PairBatcher(ds, 2, 32, seed=0).next()
    assert img_a.shape == (2, 3, 32, 32) and cats[0] == cats[1] and bool(has_c.all())


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


def test_released_training_mode_keeps_batchnorm_statistics_and_trains_the_encoder():
    torch.manual_seed(0)
    model = MaCoSNet(backbone="tiny", image_size=64)
    assert all(p.requires_grad for p in model.backbone.parameters())  # released: the encoder is fine-tuned
    assert not any(p.requires_grad for p in MaCoSNet(backbone="tiny", image_size=64,
                                                     freeze_backbone=True).backbone.parameters())
    loss_fn = MaCoSNetLoss()
    batch = train_mod.PairBatcher("sample", 2, 64, seed=0).next()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    before = model.backbone.net[0].weight.detach().clone()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    train_mod.train_step(model, loss_fn, opt, batch, "cpu")  # bn="eval": the released model.eval() epoch
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stats.items())
    assert not torch.equal(model.backbone.net[0].weight, before)
    train_mod.train_step(model, loss_fn, opt, batch, "cpu", bn="train")
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in stats.items())


def test_train_starts_from_model_weights(tmp_path, monkeypatch):
    # `--model` (the released train.sh's WeakAlign initialisation) goes through MaCoSNet(checkpoint=...): here a
    # checkpoint of our own layout, whose weights the new run starts from (lr 0: nothing moves)
    assert _train(tmp_path, "--steps", "1", "--lr", "1e-3") == 0
    init = load_checkpoint(tmp_path / "run" / "last.pt")
    seen = {}
    real = train_mod.train_step

    def spy(model, *a, **k):
        seen.setdefault("sd", {n: v.clone() for n, v in model.state_dict().items()})
        return real(model, *a, **k)

    monkeypatch.setattr(train_mod, "train_step", spy)
    out2 = tmp_path / "run2"
    assert cli.main(["train", "macosnet", "--model", str(tmp_path / "run" / "last.pt"), "--steps", "1", "--lr", "0",
                     "--image-size", "64", "--batch-size", "2", "--no-progress", "--log-every", "0", "--out", str(out2)]) == 0
    for k, v in init["model"].items():
        assert torch.equal(seen["sd"][k], v), k
    assert load_checkpoint(out2 / "last.pt")["config"] == init["config"]
