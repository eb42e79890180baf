"""Every Python script in examples/ runs on the bundled sample data and does what its docstring says."""
import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import torch

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location("example_" + name, EXAMPLES / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_example_script_is_tested():
    tested = {"match_two_images", "evaluate_on_dataset", "ops_in_your_network", "load_published_checkpoint"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested
    for name in tested:
        text = (EXAMPLES / (name + ".py")).read_text()
        assert text.startswith('"""') and 'if __name__ == "__main__":' in text


def test_match_two_images(tmp_path, capsys):
    out = tmp_path / "m.npz"
    saved = _load("match_two_images").main(["--size", "120", "--out", str(out)])
    assert out.is_file() and "saved to %s" % out in capsys.readouterr().out
    assert saved["src_size"].tolist() == [300, 451] and saved["tgt_size"].tolist() == [285, 431]
    # the sample target is the photo cropped by 20 px left and 15 px top: confident mutual matches find the shift
    good = saved["mutual"] & (saved["confidence"] > np.median(saved["confidence"]))
    err = np.linalg.norm(saved["tgt_points"][good] - saved["src_points"][good] + [20, 15], axis=1)
    assert np.median(err) < 20, np.median(err)


def test_evaluate_on_dataset_synthetic_and_a_folder(tmp_path, capsys):
    mod = _load("evaluate_on_dataset")
    res = mod.main(["--limit", "2", "--out", str(tmp_path / "syn")])
    saved = json.loads((tmp_path / "syn" / "results.json").read_text())
    assert res["pairs"] == saved["pairs"] == 2 and saved["method"] == "nn" and saved["dataset"] == "synthetic"
    assert "PCK@0.1" in capsys.readouterr().out

    from test_datasets import make_pfpascal_hpf  # a PF-PASCAL folder in the layout users download

    root = tmp_path / "PF-PASCAL"
    make_pfpascal_hpf(root)
    mod.main(["--dataset", "pfpascal", "--root", str(root), "--out", str(tmp_path / "pf")])
    saved = json.loads((tmp_path / "pf" / "results.json").read_text())
    assert saved["dataset"] == "pfpascal" and saved["pairs"] == 2 and os.path.isdir(tmp_path / "pf" / "pairs")


def test_ops_in_your_network_learns():
    losses = _load("ops_in_your_network").main(steps=12)
    assert len(losses) == 12 and losses[-1] < 0.5 * losses[0]


def test_load_published_checkpoint(tmp_path, capsys):
    from test_ncnet_published import published_state_dict, train_py_checkpoint

    ck = tmp_path / "ncnet_pfpascal.pth.tar"  # NC-Net's train.py file (here on ResNet-50, random values)
    torch.save(train_py_checkpoint(published_state_dict()), ck)
    model, pck = _load("load_published_checkpoint").main(["ncnet", str(ck), "--backbone", "resnet50",
                                                           "--size", "64"])
    out = capsys.readouterr().out
    assert "ncnet: every part loaded from" in out and 0.0 <= pck <= 1.0
    sd = published_state_dict()
    torch.testing.assert_close(model.consensus.conv[0].weight.sum(), sd["NeighConsensus.conv.0.weight"].sum())
    with pytest.raises(FileNotFoundError):
        _load("load_published_checkpoint").main(["ncnet", str(tmp_path / "none.pth.tar")])
