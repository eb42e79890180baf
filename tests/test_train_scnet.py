"""``semcorr train scnet``: the released recipe (SGD lr 1e-4, momentum 0.9, weight decay 0.01 for AG+, batch 1,
200 epochs, momentum reset per epoch, only the FC trained) as the default config; its PF-PASCAL training data
(active proposals, keypoint-TPS IoU) on a fixture tree; a short offline run of SCNet-A on synthetic proposal pairs
(exact-warp IoU) that lowers the hinge loss; its checkpoint loads."""
import numpy as np
import pytest
import torch

from semcorr.train import _engine as E
from semcorr.train import _engine_config as C


def test_default_config_is_the_released_recipe():
    from semcorr.train.scnet import RECIPE

    assert RECIPE.default_config == "scnet_pfpascal"
    for name in ("scnet_pfpascal", "scnet_synthetic"):
        cfg = C.load_config(name)
        assert cfg["optimizer"] == {"name": "sgd", "lr": 0.0001, "momentum": 0.9, "weight_decay": 0.01,
                                    "reset_momentum_each_epoch": True}
        assert cfg["train"]["batch_size"] == 1 and cfg["train"]["epochs"] == 200 and cfg["model"]["variant"] == "AG+"
    data = C.load_config("scnet_pfpascal")["data"]["train"]
    assert data["kind"] == "pfpascal_proposals" and data["n_proposals"] == 500 and data["proposals"] == "rp"


def test_active_proposals_follow_crop_active_boxset():
    from semcorr.train.scnet import active_proposals

    boxes = torch.tensor([[10.0, 10, 20, 20],   # inside the object box, covers a keypoint -> active
                          [10.0, 10, 20, 20.5],  # same box: still > 75 % inside
                          [0.0, 0, 20, 20],     # 25 % inside only
                          [30.0, 30, 38, 38],   # inside, but no keypoint in it
                          [5.0, 5, 45, 45]])    # > 75 % inside (object box 5..45), covers the keypoint
    kps = np.array([[15.0, 15.0], [40.0, 12.0]])
    assert active_proposals(boxes, [5, 5, 45, 45], kps).tolist() == [0, 1, 4]


def test_keypoint_warp_is_the_tps_through_the_keypoints():
    from semcorr.train.scnet import keypoint_warp

    rng = np.random.default_rng(0)
    src = rng.uniform(0, 50, size=(6, 2))
    tgt = src * 1.3 + rng.normal(0, 2, size=(6, 2)) + 4
    warp = keypoint_warp(src, tgt, [0, 0, 50, 50], [4, 4, 69, 69])
    np.testing.assert_allclose(warp(torch.from_numpy(src)).numpy(), tgt, atol=1e-8)
    # fewer than 3 keypoints: the object box mapped onto the other box
    box = keypoint_warp(src[:2], tgt[:2], [0, 0, 10, 20], [5, 5, 25, 45])
    np.testing.assert_allclose(box(torch.tensor([[10.0, 20.0], [0.0, 0.0]])).numpy(), [[25, 45], [5, 5]])


def _pfpascal_tree(root, h=64, w=80):
    import csv

    import imageio.v3 as iio
    import scipy.io

    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations" / "cat").mkdir(parents=True)
    for i in range(4):
        iio.imwrite(root / "JPEGImages" / ("2009_%06d.png" % i), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        kps = np.array([[20, 20], [60, 22], [40, 50], [25, 45]], dtype=np.float64) + rng.normal(0, 2, (4, 2))
        scipy.io.savemat(root / "Annotations" / "cat" / ("2009_%06d.mat" % i),
                         {"kps": kps, "bbox": np.array([[8, 8, 72, 58]])})
    for split, pairs in (("trn", [(0, 1), (2, 3)]), ("val", [(1, 2)])):
        with open(root / ("%s_pairs.csv" % split), "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["source_image", "target_image", "class", "flip"])
            wr.writerows([["JPEGImages/2009_%06d.png" % a, "JPEGImages/2009_%06d.png" % b, 8, 0] for a, b in pairs])


def test_default_config_runs_on_a_pfpascal_tree(tmp_path):
    from semcorr.cli import main

    root = tmp_path / "PF-PASCAL"
    _pfpascal_tree(root)
    from semcorr.train.scnet import PFPascalProposalPairs

    ds = PFPascalProposalPairs(root, "trn", proposals="sliding")
    s = ds[0]
    assert s["iou"].shape == (len(s["active"]), len(s["tgt_boxes"])) and len(s["active"]) > 0
    assert float(s["iou"].max()) > 0.5  # positives exist for the released loss
    out = tmp_path / "run"
    args = ["train", "scnet", "--out", str(out), "--no-progress",
            "--set", "data.train.root=%s" % root, "--set", "data.val.root=%s" % root,
            "--set", "data.train.proposals=sliding", "--set", "data.val.proposals=sliding",
            "--set", "model.backbone=daisy", "--set", "model.weights=null", "--set", "model.fc_dim=16",
            "--set", "train.epochs=1"]
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert main(args) == 0
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["global_step"] == 2 and np.isfinite(ck["history"][0]["val_loss"])
    assert ck["config"]["data"]["train"]["kind"] == "pfpascal_proposals"
    # AG+ trains cnv_fc_2 only: the appearance FC, never loaded from a trained SCNet-A here, stays random and
    # the rebuilt model says so
    assert ck["untrained_parts"] == ["appearance FC"]
    from semcorr.train._engine import build_trained

    assert build_trained(out / "last.pt").untrained_parts() == ["appearance FC"]


@pytest.mark.slow
def test_short_run_lowers_the_hinge_loss_and_trains_only_the_fc(tmp_path):
    from semcorr.train.scnet import RECIPE

    cfg = C.apply_overrides(C.load_config("scnet_synthetic"), [
        "model.variant=A", "model.backbone=daisy", "model.fc_dim=64", "train.epochs=4", "train.batch_size=2",
        "optimizer.lr=0.1",  # raised from 1e-4 so that 8 steps show a change
        "data.train={kind: synthetic_proposals, image_size: 96, pairs: 4}",
        "data.val={kind: synthetic_proposals, image_size: 96, pairs: 2, seed: 1}", "run.out=%s" % tmp_path])
    with pytest.warns(UserWarning, match="UNTRAINED"):
        res = E.train(RECIPE, cfg, progress=False)
    h = res["history"]
    assert h[-1]["loss"] < h[0]["loss"] - 0.01 and h[-1]["val_loss"] < h[0]["val_loss"]
    ck = torch.load(res["checkpoint"], weights_only=True)
    assert ck["method"] == "scnet" and ck["model_config"]["variant"] == "A"
    assert ck["optimizer"]["param_groups"][0]["weight_decay"] == 0.01
    model = E.build_trained(res["checkpoint"])
    assert model.untrained_parts() == []
    torch.testing.assert_close(model.fc_a.weight, ck["state_dict"]["fc_a.weight"])
    # the optimizer held the appearance FC's weight and bias only (SCNet_A_init: VGG learning rate 0)
    assert len(ck["optimizer"]["param_groups"][0]["params"]) == 2
