"""`semcorr train macosnet` on the training engine: the released schedule as the default config, the released
random crop and class column of the PF-PASCAL pair list, the loss falls, BatchNorm statistics stay fixed while
the encoder trains (released model.eval() epoch), checkpoints resume and come back through build_model, and a
run starts from the weights of `model.checkpoint`."""
import json

import numpy as np
import torch

from semcorr import cli
from semcorr.models import build_model
from semcorr.train import _engine as E
from semcorr.train import _engine_config as C
from semcorr.train import macosnet as T


def _tiny(tmp_path, *extra):
    """The synthetic config on the tiny encoder at 64 px, two pairs (one global batch: every epoch is one step
    on the same pairs)."""
    return C.apply_overrides(C.load_config("macosnet_synthetic"), [
        "model.backbone=tiny", "model.image_size=64", "train.batch_size=2", "data.val=null", "data.pck=null",
        "data.train={kind: synthetic, image_size: 64, repeats: 1, images: [astronaut, chelsea], warps: [affine]}",
        "run.out=%s" % tmp_path, *extra])


def test_default_config_is_the_released_train_sh(capsys):
    assert cli.main(["train", "macosnet", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["optimizer"] == {"name": "adam", "lr": 5e-8, "weight_decay": 0.0}
    assert cfg["train"]["batch_size"] == 4 and cfg["train"]["epochs"] == 60 and cfg["train"]["seed"] == 1
    assert cfg["loss"]["weights"] == {"matching": 1.0, "cycle": 1.0, "trans": 0.0, "contrast": 0.0, "task": 0.0}
    assert cfg["model"]["checkpoint"].endswith("weakalign.pth.tar") and cfg["model"]["image_size"] == 240
    assert cfg["model"]["freeze_backbone"] is False and cfg["train"]["batchnorm"] == "eval"
    assert cfg["data"]["train"]["random_crop"] is True and cfg["data"]["pck"]["split"] == "val"


def test_pair_list_with_class_and_the_released_random_crop(tmp_path):
    from PIL import Image

    img = (np.arange(40 * 80 * 3) % 251).reshape(40, 80, 3).astype(np.uint8)
    (tmp_path / "im").mkdir()
    for n in ("a", "b"):
        Image.fromarray(img).save(tmp_path / "im" / ("%s.png" % n))
    (tmp_path / "pairs.csv").write_text("source_image,target_image,class,flip\nim/a.png,im/b.png,7,0\n"
                                        "im/b.png,im/a.png,3,1\n")
    plain = T.build_data({"kind": "pairs_csv", "root": str(tmp_path), "csv": "pairs.csv", "image_size": 16,
                          "random_crop": False})
    assert [plain[i]["category"] for i in range(2)] == ["7", "3"]
    full = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)
    torch.testing.assert_close(plain[0]["src_img"], torch.nn.functional.interpolate(
        full[None], size=(16, 16), mode="bilinear", align_corners=True)[0])
    torch.manual_seed(0)
    cropped = T.build_data({"kind": "pairs_csv", "root": str(tmp_path), "csv": "pairs.csv", "image_size": 16})[0]
    # the crop the released get_image draws (from torch's generator here): top in [0, h/4), bottom in
    # [3h/4, h), likewise for columns; the same draws by hand
    torch.manual_seed(0)
    r = [int(torch.randint(n, (1,))) for n in (10, 10, 20, 20)]
    want = full[:, r[0]:30 + r[1], r[2]:60 + r[3]]
    want = torch.nn.functional.interpolate(want[None], size=(16, 16), mode="bilinear", align_corners=True)[0]
    torch.testing.assert_close(cropped["src_img"], want)
    assert not torch.allclose(cropped["src_img"], plain[0]["src_img"])  # the crop did something


def test_a_few_steps_lower_the_loss_and_keep_batchnorm_statistics(tmp_path):
    # the matching term of the affine stage alone on the same two pairs (the cycle term is 0 at the identity start;
    # see tests/test_macosnet_losses.py for the released TPS stage's border cells); lr 1e-4
    cfg = _tiny(tmp_path, "train.epochs=5", "loss.weights.cycle=0", "model.cascade=false")
    torch.manual_seed(int(cfg["train"]["seed"]))
    start = T.build(cfg)  # the engine seeds with train.seed before building: the same initial weights
    h = [r["loss"] for r in E.train(T.RECIPE, cfg, progress=False)["history"]]
    assert h[-1] < h[0] - 0.005, h  # measured -0.0973 -> -0.1081
    assert all(x > y for x, y in zip(h, h[1:])), h
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    sd0 = start.state_dict()
    for k, v in ck["state_dict"].items():
        if "running_" in k:  # released: the epoch runs in model.eval()
            assert torch.equal(v, sd0[k]), k
    assert not torch.equal(ck["state_dict"]["backbone.net.0.weight"], sd0["backbone.net.0.weight"])  # fine-tuned
    assert ck["untrained_parts"] == ["decoder"]  # no co-segmentation term in the released weights


def test_checkpoint_resumes_and_comes_back_through_build_model(tmp_path, capsys):
    argv = ["train", "macosnet", "--config", "macosnet_synthetic", "--no-progress", "--out", str(tmp_path)]
    sets = [a for s in ["model.backbone=tiny", "model.image_size=64", "train.batch_size=2", "data.val=null",
                        "data.pck=null", "data.train={kind: synthetic, image_size: 64, repeats: 1, "
                        "images: [astronaut, chelsea], warps: [affine]}"] for a in ("--set", s)]
    assert cli.main(argv + sets + ["--set", "train.epochs=1"]) == 0
    first = torch.load(tmp_path / "last.pt", weights_only=True)
    assert cli.main(argv + sets + ["--set", "train.epochs=2", "--resume", "auto"]) == 0
    second = torch.load(tmp_path / "last.pt", weights_only=True)
    assert second["epoch"] == 2 and second["history"][0] == first["history"][0]
    model = build_model("macosnet", checkpoint=str(tmp_path / "last.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, second["state_dict"][k]), k
    assert model.match(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)).field.shape == (1, 4, 4, 2)


def test_a_run_starts_from_the_weights_of_model_checkpoint(tmp_path):
    # the released train.sh's --model initialisation: here a checkpoint of a previous run (lr 0: nothing moves)
    E.train(T.RECIPE, _tiny(tmp_path / "a", "train.epochs=1", "optimizer.lr=0.001"), progress=False)
    init = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    cfg = _tiny(tmp_path / "b", "train.epochs=1", "optimizer.lr=0.0",
                "model.checkpoint=%s" % (tmp_path / "a" / "last.pt"))
    E.train(T.RECIPE, cfg, progress=False)
    after = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k, v in init["state_dict"].items():
        assert torch.equal(after["state_dict"][k], v), k
