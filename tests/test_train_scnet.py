"""``semcorr train scnet``: the released recipe (SGD lr 1e-4, momentum 0.9, weight decay 0.01 for AG+, batch 1,
200 epochs, momentum reset per epoch, only the FC trained) as the default config, and a short offline run of
SCNet-A on synthetic proposal pairs (exact-warp IoU) that lowers the hinge loss; its checkpoint loads."""
import pytest
import torch

from semcorr.train import _engine as E
from semcorr.train import _engine_config as C


def test_default_config_is_the_released_recipe():
    cfg = C.load_config("scnet_synthetic")
    assert cfg["optimizer"] == {"name": "sgd", "lr": 0.0001, "momentum": 0.9, "weight_decay": 0.01,
                                "reset_momentum_each_epoch": True}
    assert cfg["train"]["batch_size"] == 1 and cfg["train"]["epochs"] == 200 and cfg["model"]["variant"] == "AG+"


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
