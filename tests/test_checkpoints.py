"""Safe checkpoint loading (semcorr.checkpoints) and the untrained-parts bookkeeping of every model."""
import argparse
import pickle
import zipfile

import numpy as np
import pytest
import torch

from semcorr.checkpoints import CheckpointError, check_keys, load_checkpoint, unwrap_state_dict


def _published_style(tmp_path):
    """The file layout NC-Net's train.py writes: argparse args, numpy scalar and arrays beside the tensors."""
    train_loss, test_loss = np.zeros(3), np.array([3.0, 2.0, 1.0])
    ck = {"epoch": 3, "args": argparse.Namespace(lr=5e-4, ncons_kernel_sizes=[5, 5, 5]),
          "state_dict": {"module.w": torch.ones(2)}, "best_test_loss": np.min(test_loss),
          "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4, "params": [0]}]},
          "train_loss": train_loss, "test_loss": test_loss}
    path = tmp_path / "published.pth.tar"
    torch.save(ck, path)
    return path


def _as_numpy1(path, out):
    """Rewrite a torch zip checkpoint so that its pickle names numpy 1.x's module (numpy.core.multiarray), as
    files written by the published code (numpy 1.x) do."""
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(item, data)
    return out


def test_published_layout_loads_with_numpy_objects(tmp_path):
    path = _published_style(tmp_path)
    with pytest.raises(pickle.UnpicklingError):  # what a plain weights_only load does with this layout
        torch.load(path, weights_only=True)
    ck = load_checkpoint(path)
    assert ck["args"].ncons_kernel_sizes == [5, 5, 5]
    assert float(ck["best_test_loss"]) == 1.0 and ck["test_loss"].tolist() == [3.0, 2.0, 1.0]
    assert unwrap_state_dict(ck)["w"].tolist() == [1.0, 1.0]


def test_numpy1_module_names_load(tmp_path):
    path = _as_numpy1(_published_style(tmp_path), tmp_path / "numpy1.pth.tar")
    assert float(load_checkpoint(path)["best_test_loss"]) == 1.0


class _Evil:
    def __reduce__(self):
        return (print, ("ran code",))


def test_arbitrary_globals_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="print|builtins"):
        load_checkpoint(path)
    assert "ran code" not in capsys.readouterr().out


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint("nope.pt")


def test_unwrap_rejects_non_dict():
    with pytest.raises(CheckpointError, match="state_dict"):
        unwrap_state_dict([1, 2])


def test_check_keys_names_missing_unexpected_and_shapes():
    expected = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1)}
    check_keys(expected, {"a": torch.ones(2), "b": torch.ones(3), "c": torch.ones(1)}, "toy")
    with pytest.raises(CheckpointError) as e:
        check_keys(expected, {"a": torch.ones(5), "c": torch.ones(1), "zzz": torch.ones(1)}, "toy")
    msg = str(e.value)
    assert "missing keys: b" in msg and "unexpected keys: zzz" in msg and "a: checkpoint (5,), model (2,)" in msg
    check_keys(expected, {"a": torch.ones(2), "c": torch.ones(1)}, "toy", allow_missing=["b"])
    with pytest.raises(CheckpointError, match=r"shape mismatches: b: checkpoint \(4,\), model \(3,\)$"):
        check_keys(expected, {"a": torch.ones(2), "b": torch.ones(4), "c": torch.ones(1)}, "toy")  # shapes alone


def test_untrained_parts_warn_once_and_line():
    from semcorr.models import CorrespondenceModel, untrained_line

    class Toy(CorrespondenceModel):
        name = "toy"

        def forward(self, src_img, tgt_img):  # pragma: no cover - not called
            raise NotImplementedError

    m = Toy()
    assert untrained_line(m) is None
    m.mark_untrained("backbone", "head")
    m.mark_untrained("head")
    assert m.untrained_parts() == ["backbone", "head"]
    assert untrained_line(m).startswith("UNTRAINED: toy has random weights in backbone, head")
    with pytest.warns(UserWarning, match="UNTRAINED: toy"):
        m.warn_if_untrained()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.warn_if_untrained()  # once per object
    m.mark_trained("backbone", "head")
    assert untrained_line(m) is None


def test_a_backbone_that_says_it_is_not_pretrained_counts_as_untrained():
    from torch import nn

    from semcorr.models import CorrespondenceModel

    class Toy(CorrespondenceModel):
        name = "toy"

        def __init__(self, pretrained):
            super().__init__()
            self.backbone = nn.Identity()
            self.backbone.pretrained = pretrained

        def forward(self, src_img, tgt_img):  # pragma: no cover - not called
            raise NotImplementedError

    assert Toy(True).untrained_parts() == []
    m = Toy(False)
    m.mark_untrained("head")
    assert m.untrained_parts() == ["backbone", "head"]
