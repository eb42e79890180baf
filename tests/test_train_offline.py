"""Offline proof that the recipes train: a short run on the bundled synthetic data lowers the training and
validation loss of every engine recipe and raises the validation PCK (last epoch over first) of NC-Net, Sparse
NC-Net, PMNC and SFNet. Same settings as ``benchmarks/train_curves.py`` (whose comments say where they differ from
the recipes: NC-Net lr 1e-4; SFNet lr 3e-4 and 48 images with fresh pairs every epoch). MaCoSNet: the loss only;
on these tiny settings (4 x 4 to 8 x 8 grids, random tiny CNN, lr 1e-4 to 1e-3) its predicted transform stays at
the identity (its affine theta rounds to the identity at 3 decimals) and its validation PCK equals the no-motion baseline exactly, see
docs/TRAINING.md. SCNet: tests/test_train_scnet.py."""
import pytest
import torch

from benchmarks.train_curves import run_method
from semcorr.models import build_model

#: parts still random after the tiny runs: MaCoSNet's decoder (no co-segmentation term in the released weights),
#: SFNet's frozen random tiny CNN
STILL_RANDOM = {"macosnet": ["decoder"], "sfnet": ["backbone"]}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ncnet", "sparse-ncnet", "pmnc", "macosnet", "sfnet"])
def test_short_synthetic_run_lowers_the_loss(tmp_path, method):
    with pytest.warns(UserWarning, match="UNTRAINED"):
        res = run_method(method, str(tmp_path / method), epochs=4, size=64)
    h = res["history"]
    assert len(h) == 4
    first, last = h[0], h[-1]
    if method in ("ncnet", "sparse-ncnet"):
        # the weak loss (negative - positive score, negative from the start) grows at least four-fold in magnitude
        assert last["loss"] < 4 * first["loss"] < 0, h
    else:
        assert last["loss"] < first["loss"] - 0.01 * abs(first["loss"]), h
    assert last["val_loss"] < first["val_loss"], h
    assert all(0 <= e["val_pck"] <= 1 for e in h)
    if method != "macosnet":  # see the module docstring
        assert last["val_pck"] > first["val_pck"], h
    # the checkpoint is what build_model(method, checkpoint=...) loads
    sd = torch.load(res["checkpoint"], weights_only=True)["state_dict"]
    model = build_model(method, checkpoint=res["checkpoint"])
    assert model.untrained_parts() == STILL_RANDOM.get(method, [])
    for k, v in sd.items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
