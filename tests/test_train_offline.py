"""Offline proof that the recipes train: a short run on the bundled synthetic pairs lowers the training and
validation loss (NC-Net, Sparse NC-Net) and raises the validation PCK (Sparse NC-Net, slightly: 0.547 -> 0.557;
NC-Net's PCK is logged but not monotone at this tiny scale: HOG features, 64 px, 16 steps). Same settings as
``benchmarks/train_curves.py``."""
import pytest

from benchmarks.train_curves import run_method


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ncnet", "sparse-ncnet"])
def test_short_synthetic_run_lowers_the_loss(tmp_path, method):
    with pytest.warns(UserWarning, match="UNTRAINED"):
        res = run_method(method, str(tmp_path / method), epochs=4, size=64)
    h = res["history"]
    assert len(h) == 4
    # the weak loss (negative - positive score) falls by more than an order of magnitude of its start
    assert h[-1]["loss"] < h[0]["loss"] - 5e-5 and h[-1]["loss"] < 5 * h[0]["loss"]
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    assert all(0 <= e["val_pck"] <= 1 for e in h)
    if method == "sparse-ncnet":
        assert h[-1]["val_pck"] > h[0]["val_pck"]
    # the checkpoint is what build_model(method, checkpoint=...) loads
    import torch

    from semcorr.models import build_model

    sd = torch.load(res["checkpoint"], weights_only=True)["state_dict"]
    model = build_model(method, checkpoint=res["checkpoint"], backbone="hog")
    assert model.untrained_parts() == []
    for k, v in sd.items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
