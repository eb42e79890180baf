"""The `semcorr` command line: `semcorr match` on the built-in pair and on image files."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from semcorr import cli
from semcorr.commands.match import pck_img

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pck(out, alpha):
    m = re.search(r"PCK@%.2f:\s+([0-9.]+)" % alpha, out)
    assert m, "no PCK@%.2f line in:\n%s" % (alpha, out)
    return float(m.group(1))


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 10_000


def test_match_sample_pair_reports_high_pck(tmp_path, capsys):
    out_png = tmp_path / "m.png"
    assert cli.main(["match", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert _is_png(out_png)
    assert "method:     nn (backbone daisy)" in out and "grid:       30x30" in out
    assert re.search(r"matches:\s+900", out)
    p05, p10 = _pck(out, 0.05), _pck(out, 0.1)
    # measured for seed 0 at 240 px: PCK@0.05 = 0.81, PCK@0.10 = 0.89 (36 keypoints, alpha_img)
    assert p10 >= 0.75 and p05 >= 0.6 and p05 <= p10

    # a random matcher on the same pair scores ~0.04: the margin above it is what matching buys
    from semcorr.data.sample import sample_pair

    pair = sample_pair(seed=0, size=240)
    _, gt = pair.kps_tensors()
    rnd = torch.rand(gt.shape, generator=torch.Generator().manual_seed(0)) * 239
    base = float(pck_img(rnd, gt, (240, 240), 0.1)[0])
    assert base < 0.15 and p10 > base + 0.5


def test_match_small_sample_other_seed(tmp_path, capsys):
    out_png = tmp_path / "small.png"
    assert cli.main(["match", "--size", "120", "--seed", "1", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert os.path.exists(out_png) and "grid:       15x15" in out
    assert _pck(out, 0.1) >= 0.7  # measured 0.94


def test_match_image_files(tmp_path, capsys):
    from skimage import data, io

    img = data.chelsea()  # 300 x 451
    io.imsave(tmp_path / "a.png", img)
    io.imsave(tmp_path / "b.jpg", np.ascontiguousarray(img[15:, 20:]))
    out_png = tmp_path / "files.png"
    assert cli.main(["match", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "--size", "120",
                     "--num-draw", "20", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert os.path.exists(out_png)
    assert "80x120 (HxW)" in out and "PCK" not in out
    m = re.search(r"matches:\s+(\d+), (\d+) mutual", out)
    assert m and int(m.group(1)) == 10 * 15 and 0 < int(m.group(2)) <= 150


def test_cli_usage_errors(capsys):
    assert cli.main([]) == 2
    assert "match" in capsys.readouterr().out
    assert cli.main(["match", "only_one.png"]) == 2
    assert "give both SRC and TGT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])


def test_match_reports_missing_weights_and_unknown_method(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert cli.main(["match", "--backbone", "resnet101", "--out", str(tmp_path / "x.png")]) == 1
    assert "never downloads" in capsys.readouterr().err
    assert cli.main(["match", "--method", "no_such_method", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.png")


def test_cli_fails_loudly_on_a_missing_subcommand_module(monkeypatch):
    # since c8989f1 a subcommand module that does not import fails the whole command instead of vanishing
    monkeypatch.setattr(cli, "SUBCOMMANDS", ["match", "no_such_subcommand_xyz"])
    with pytest.raises(ModuleNotFoundError, match="no_such_subcommand_xyz"):
        cli.main([])


def test_pck_img_counts_only_valid_keypoints():
    gt = torch.tensor([[[10.0, 10.0], [50.0, 50.0], [-1.0, -1.0], [80.0, 20.0]]])
    pred = torch.tensor([[[15.0, 10.0], [50.0, 70.0], [0.0, 0.0], [80.0, 20.0]]])
    # L = 100, alpha 0.1 -> 10 px: points 0 and 3 are correct, point 2 is padding
    assert torch.allclose(pck_img(pred, gt, (100, 60), 0.1).double(), torch.tensor([2 / 3], dtype=torch.float64))
    assert torch.allclose(pck_img(pred, gt, (100, 60), 0.01).double(), torch.tensor([1 / 3], dtype=torch.float64))


def test_python_dash_m_semcorr():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "semcorr", "--version"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("semcorr ")


def _saved_figure_texts(monkeypatch):
    """Record the texts of every matplotlib figure `semcorr match` saves."""
    from matplotlib.figure import Figure

    texts, save = [], Figure.savefig

    def savefig(fig, *a, **k):
        texts.append([t.get_text() for t in fig.texts])
        return save(fig, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return texts


def test_untrained_ncnet_says_so_and_a_checkpoint_silences_it(tmp_path, monkeypatch, capsys):
    from test_ncnet_published import published_state_dict, train_py_checkpoint

    texts = _saved_figure_texts(monkeypatch)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert cli.main(["match", "--method", "ncnet", "--size", "64", "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "UNTRAINED: ncnet has random weights in backbone, consensus" in out
    assert _pck(out, 0.1) >= 0.0 and "UNTRAINED" in " ".join(texts[-1]).replace("\n", " ")
    # NC-Net's train.py file (backbone + consensus, here on ResNet-50): nothing random is left
    ck = tmp_path / "ncnet.pth.tar"
    torch.save(train_py_checkpoint(published_state_dict()), ck)
    assert cli.main(["match", "--method", "ncnet", "--backbone", "resnet50", "--checkpoint", str(ck), "--size", "64",
                     "--out", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr().out
    assert "UNTRAINED" not in out and "method:     ncnet (backbone resnet50 (checkpoint))" in out
    assert not any("UNTRAINED" in t for t in texts[-1]) and _is_png(tmp_path / "t.png")


def test_checkpoint_errors_are_reported(tmp_path, capsys):
    from test_ncnet_published import published_state_dict, train_py_checkpoint

    sd = published_state_dict()
    del sd["NeighConsensus.conv.2.bias"]
    ck = tmp_path / "partial.pth.tar"
    torch.save(train_py_checkpoint(sd), ck)
    assert cli.main(["match", "--method", "ncnet", "--backbone", "resnet50", "--checkpoint", str(ck),
                     "--out", str(tmp_path / "x.png")]) == 1
    assert "missing keys: consensus.conv.2.bias" in capsys.readouterr().err
    assert cli.main(["match", "--method", "nn", "--checkpoint", str(ck), "--out", str(tmp_path / "x.png")]) == 2
    assert "takes no --checkpoint" in capsys.readouterr().err
    assert cli.main(["match", "--method", "ncnet", "--checkpoint", str(tmp_path / "none.pth.tar"),
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "none.pth.tar: no such file" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.png")


def test_weight_free_default_prints_no_untrained_line(tmp_path, capsys):
    assert cli.main(["match", "--size", "64", "--out", str(tmp_path / "d.png")]) == 0
    assert "UNTRAINED" not in capsys.readouterr().out
