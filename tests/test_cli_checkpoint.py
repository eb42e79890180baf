"""`semcorr train` -> `build_model(M, checkpoint=...)` / `semcorr match --checkpoint`: the trained model comes back
exactly (its configuration and every weight, a random backbone included), for SFNet and NC-Net (the training
engine)."""
import numpy as np
import pytest
import torch

from semcorr import cli
from semcorr.checkpoints import load_checkpoint
from semcorr.commands.match import load_image, load_matches, matches_record
from semcorr.models import build_model


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from skimage import data, io

    d = tmp_path_factory.mktemp("imgs")
    img = data.chelsea()[::3, ::3]  # 100 x 151
    io.imsave(d / "a.png", img)
    io.imsave(d / "b.png", np.ascontiguousarray(img[6:, 9:]))
    return str(d / "a.png"), str(d / "b.png")


def _images(pair, size):
    return [torch.from_numpy(load_image(p, size)).permute(2, 0, 1)[None] for p in pair]


def _same_matches(m1, m2):
    torch.testing.assert_close(m1.field, m2.field, rtol=0, atol=0)
    torch.testing.assert_close(m1.confidence, m2.confidence, rtol=0, atol=0)


def _cli_save(pair, ck, out, capsys, *extra):
    assert cli.main(["match", *pair, "--checkpoint", ck, "--size", "64", "--no-draw", "--save", out, *extra]) == 0
    return capsys.readouterr().out


def _train_sfnet(run, capsys):
    """`semcorr train sfnet` (the engine) on its offline config with the default random "tiny" backbone, made tiny:
    64 px, batch 1, two masked images, one epoch."""
    import warnings

    sets = ["model.image_size=64", "train.epochs=1", "train.batch_size=1", "data.val=null", "data.pck=null",
            "data.train={kind: synthetic_masks, n: 2, image_size: 64, seed: 0}"]
    argv = ["train", "sfnet", "--config", "sfnet_synthetic", "--no-progress", "--out", str(run)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # UNTRAINED backbone: the default
        assert cli.main(argv + [a for x in sets for a in ("--set", x)]) == 0
    capsys.readouterr()
    return str(run / "last.pt")


def test_sfnet_default_training_run_comes_back_exactly(tmp_path, pair, capsys):
    from semcorr.models.sfnet import SFNet

    run = tmp_path / "run"
    # the case: the defaults (random "tiny" backbone), a few steps
    path = _train_sfnet(run, capsys)
    ck = load_checkpoint(path)  # weights_only: nothing but tensors and plain values
    assert ck["method"] == "sfnet" and ck["model_config"]["backbone"] == "tiny"
    assert ck["untrained_parts"] == ["backbone"]

    # the trained model, rebuilt independently: the trainer seeds torch with its seed (0) before building the model,
    # so the same seed gives its random backbone; only the adaptation layers come from the file
    torch.manual_seed(0)
    ref = SFNet(backbone="tiny", weights=None, image_size=64)
    init = ref.adapt3.blocks[0].conv.weight.detach().clone()
    ref.load_state_dict({k: v for k, v in ck["state_dict"].items() if k.startswith(("adapt3.", "adapt4."))},
                        strict=False)
    assert not torch.equal(ref.adapt3.blocks[0].conv.weight, init)  # trained, not the initialisation
    for k, v in ref.state_dict().items():  # the saved backbone is the random one training started from
        if k.startswith("features."):
            torch.testing.assert_close(ck["state_dict"][k], v, rtol=0, atol=0, msg=k)
    src, tgt = _images(pair, 64)
    with torch.no_grad():
        expected = ref(src, tgt)
        torch.manual_seed(123)  # a different global RNG state must not matter
        with pytest.warns(UserWarning, match="UNTRAINED: sfnet has random weights in backbone;"):
            m1 = build_model("sfnet", checkpoint=path)
        torch.manual_seed(456)
        m2 = build_model("sfnet", checkpoint=path)
        _same_matches(m1(src, tgt), expected)
        _same_matches(m2(src, tgt), expected)
    assert m1.image_size == 64 and m1.backbone_name == ref.backbone_name
    # the random backbone stays marked as such; the trained adaptation layers do not
    assert m1.untrained_parts() == ["backbone"]
    for k, v in ck["state_dict"].items():
        torch.testing.assert_close(m1.state_dict()[k], v, rtol=0, atol=0, msg=k)

    # semcorr match --checkpoint: the method comes from the checkpoint; two runs save the same matches, which
    # are the reference model's
    out = _cli_save(pair, path, str(tmp_path / "one.npz"), capsys)
    assert "method:     sfnet" in out and "UNTRAINED: sfnet has random weights in backbone;" in out
    _cli_save(pair, path, str(tmp_path / "two.npz"), capsys, "--method", "sfnet")
    one, two = load_matches(str(tmp_path / "one.npz")), load_matches(str(tmp_path / "two.npz"))
    src64, tgt64 = _images(pair, 64)
    with torch.no_grad():
        want = matches_record(ref.match(src64, tgt64), (100, 151), (94, 142), "sfnet", pair[0], pair[1])
    assert one["src_size"].tolist() == [100, 151] and one["tgt_size"].tolist() == [94, 142]
    for key in ("src_points", "tgt_points", "confidence", "mutual"):
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
        np.testing.assert_array_equal(one[key], want[key], err_msg=key)


def test_sfnet_checkpoint_of_another_method_is_refused(tmp_path, pair, capsys):
    path = _train_sfnet(tmp_path / "run", capsys)
    assert cli.main(["match", *pair, "--method", "ncnet", "--checkpoint", path, "--no-draw"]) == 1
    err = capsys.readouterr().err.strip()
    assert "was written by `semcorr train sfnet`: build it as model 'sfnet', not 'ncnet'" in err, err


def test_engine_trained_ncnet_with_a_random_backbone_comes_back_exactly(tmp_path, pair, capsys):
    from semcorr.train import _engine as E

    run = tmp_path / "run"
    sets = ["model.backbone=resnet50", "model.weights=null", "model.kernel_sizes=[3,3]", "model.channels=[4,1]",
            "train.epochs=1", "train.batch_size=2",
            "data.train={kind: synthetic, image_size: 48, repeats: 1, images: [astronaut, chelsea], warps: [affine]}",
            "data.val={kind: synthetic, image_size: 48, repeats: 1, seed: 5, images: [coffee], warps: [affine, tps]}",
            "data.pck={dataset: synthetic, image_size: 48, seed: 7, stereo: false, images: [coffee], warps: [affine]}",
            "run.out=%s" % run]
    argv = ["train", "ncnet", "--config", "ncnet_synthetic", "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert cli.main(argv) == 0
    capsys.readouterr()
    path = str(run / "last.pt")
    ck = load_checkpoint(path)
    assert ck["method"] == "ncnet" and ck["model_config"]["backbone"] == "resnet50"
    src, tgt = _images(pair, 64)
    with torch.no_grad():
        torch.manual_seed(1)
        m1 = build_model("ncnet", checkpoint=path)
        torch.manual_seed(2)
        m2 = build_model("ncnet", checkpoint=path)
        ref = E.build_trained(path)  # the engine's own rebuild
        _same_matches(m1(src, tgt), m2(src, tgt))
        _same_matches(m1(src, tgt), ref(src, tgt))
    for k, v in ck["state_dict"].items():  # the random ResNet-50 included
        torch.testing.assert_close(m1.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert any(k.startswith("backbone.") or "layer3" in k for k in ck["state_dict"])
    _cli_save(pair, path, str(tmp_path / "one.json"), capsys)
    _cli_save(pair, path, str(tmp_path / "two.json"), capsys)
    one, two = load_matches(str(tmp_path / "one.json")), load_matches(str(tmp_path / "two.json"))
    assert one["method"] == "ncnet"
    for key in ("src_points", "tgt_points", "confidence", "mutual"):
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
