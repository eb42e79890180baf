"""Every ordinary mistake of a first-day user, through the command line: one line on stderr, a non-zero exit, no
traceback (``--debug`` shows it), and for ``match`` found before any model is built."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from semcorr import cli


@pytest.fixture
def images(tmp_path):
    from skimage import data, io

    img = data.chelsea()[::4, ::4]  # 75 x 113
    io.imsave(tmp_path / "a.png", img)
    io.imsave(tmp_path / "b.png", np.ascontiguousarray(img[5:, 8:]))
    (tmp_path / "text.jpg").write_text("this is not a picture\n")
    return tmp_path


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model gets built: every input must be checked before."""
    import semcorr.models

    def build_model(*a, **k):
        raise AssertionError("the model was built before the inputs were checked")

    monkeypatch.setattr(semcorr.models, "build_model", build_model)


def _fails(capsys, argv, fragment, rc=2):
    assert cli.main(argv) == rc
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, "expected one line on stderr, got:\n%s" % err
    assert lines[0].startswith("semcorr ") and ": error: " in lines[0], lines[0]
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_match_bad_inputs_are_one_line_before_the_model(images, capsys, no_model, monkeypatch):
    a, b, t = str(images / "a.png"), str(images / "b.png"), str(images / "text.jpg")
    out = ["--out", str(images / "m.png")]
    _fails(capsys, ["match", str(images / "missing.jpg"), b] + out, "SRC %s: no such file" % (images / "missing.jpg"))
    _fails(capsys, ["match", a, str(images)] + out, "is a folder")
    line = _fails(capsys, ["match", a, t] + out, "TGT %s: not an image file" % t)
    assert "pip install" not in line  # no misleading imageio plug-in hint
    _fails(capsys, ["match", a, b, "--out", str(images / "no" / "m.png")], "folder %s does not exist" % (images / "no"))
    _fails(capsys, ["match", a, b, "--out", str(images / "m.xyz")], "unsupported file type '.xyz'")
    _fails(capsys, ["match", a, b, "--out", str(images)], "is a folder; give a file name, e.g. %s"
           % os.path.join(images, "matches.png"))
    _fails(capsys, ["match", a, b, "--save", str(images / "m.txt")] + out, "--save")
    _fails(capsys, ["match", a, b, "--save", str(images / "gone" / "m.npz")] + out, "does not exist")
    _fails(capsys, ["match", a, b, "--method", "nope"] + out, "unknown model; choose from dino, hpf")
    _fails(capsys, ["match", a, b, "--model-arg", "nope=1", "--method", "sfnet"] + out,
           "--model-arg nope: model sfnet takes no such argument")
    _fails(capsys, ["match", a, b, "--checkpoint", str(images / "none.pt"), "--method", "sfnet"] + out,
           "--checkpoint %s: no such file" % (images / "none.pt"))
    _fails(capsys, ["match", a, b, "--weights", str(images / "w.pth"), "--method", "sfnet"] + out,
           "--weights %s: no such file" % (images / "w.pth"))
    _fails(capsys, ["match", a, b, "--weights", "imagenet", "--method", "identity"] + out,
           "--weights: model identity has no pretrained backbone weights")
    _fails(capsys, ["match", a, b, "--device", "potato"] + out, "--device potato: not a torch device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(capsys, ["match", a, b, "--device", "cuda"] + out, "--device cuda: no CUDA GPU is available")
    _fails(capsys, ["match", a] + out, "give both SRC and TGT")
    _fails(capsys, ["match", a, b, "--pairs", "x.csv"] + out, "not both")
    # argparse usage errors are one line too
    for size, why in (("-5", "at least 16 pixels, or 0"), ("3", "at least 16 pixels"), ("big", "not a whole number")):
        with pytest.raises(SystemExit) as e:
            cli.main(["match", a, b, "--size", size] + out)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0] and err[0].startswith("semcorr match: error: argument --size"), err
    assert not os.path.exists(images / "m.png")


def test_match_pairs_list_errors_before_the_model(images, capsys, no_model):
    out = ["--out", str(images / "res")]
    missing = images / "none.csv"
    _fails(capsys, ["match", "--pairs", str(missing)] + out, "--pairs %s: no such file" % missing)
    (images / "bad.csv").write_text("source,target\na.png,b.png\n")
    _fails(capsys, ["match", "--pairs", str(images / "bad.csv")] + out, "must name columns src and tgt")
    (images / "gap.csv").write_text("src,tgt\na.png,b.png\nb.png,missing.png\n")
    _fails(capsys, ["match", "--pairs", str(images / "gap.csv")] + out, "missing.png: no such file")
    (images / "txt.csv").write_text("src,tgt\na.png,text.jpg\n")
    _fails(capsys, ["match", "--pairs", str(images / "txt.csv")] + out, "not an image file")
    (images / "ok.csv").write_text("src,tgt\na.png,b.png\n")
    _fails(capsys, ["match", "--pairs", str(images / "ok.csv"), "--out", str(images / "no" / "res")], "does not exist")
    _fails(capsys, ["match", "--pairs", str(images / "ok.csv"), "--save", "x.npz"] + out, "--save FILE is for one pair")
    _fails(capsys, ["match", "--pairs", str(images / "ok.csv"), "--out", str(images / "a.png")], "this is a file")


def test_sizes_mean_the_original_size_at_zero_and_upscaling_warns(images, capsys):
    from skimage import io

    io.imsave(images / "tiny.png", (np.random.default_rng(0).random((10, 10, 3)) * 255).astype(np.uint8))
    a = str(images / "a.png")
    assert cli.main(["match", a, str(images / "b.png"), "--size", "0", "--out", str(images / "o.png")]) == 0
    out = capsys.readouterr().out
    assert "75x113 (HxW)" in out and "70x105 (HxW)" in out  # the files' own sizes, as `eval --size 0`
    assert cli.main(["match", a, str(images / "tiny.png"), "--size", "64", "--out", str(images / "t.png")]) == 0
    cap = capsys.readouterr()
    assert "upscaled 6.4x (10x10 -> 64x64 pixels)" in cap.err and "a.png" not in cap.err  # a.png is shrunk


def test_out_without_extension_writes_what_it_says(images, capsys):
    assert cli.main(["match", str(images / "a.png"), str(images / "b.png"), "--out", str(images / "noext")]) == 0
    out = capsys.readouterr().out
    assert "wrote:      %s.png" % (images / "noext") in out
    assert os.path.isfile(str(images / "noext") + ".png") and not os.path.exists(images / "noext")


def test_eval_bad_inputs_are_one_line_before_the_model(capsys, tmp_path, no_model, monkeypatch):
    _fails(capsys, ["eval", "--dataset", "nope"], "--dataset unknown dataset 'nope'; choose from pfpascal")
    _fails(capsys, ["eval", "--dataset", "pfpascal"], "--dataset pfpascal needs --root")
    _fails(capsys, ["eval", "--dataset", "pfpascal", "--root", str(tmp_path / "none")], "no such folder")
    _fails(capsys, ["eval", "--method", "nope"], "--method nope: unknown model")
    _fails(capsys, ["eval", "--model-arg", "nope=1", "--method", "sfnet"], "--model-arg nope: model sfnet takes no")
    _fails(capsys, ["eval", "--model-arg", "checkpoint=%s" % (tmp_path / "x.pt"), "--method", "sfnet"],
           "checkpoint=%s: no such file" % (tmp_path / "x.pt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(capsys, ["eval", "--device", "cuda"], "--device cuda: no CUDA GPU is available")
    _fails(capsys, ["eval", "--limit", "0"], "--limit 0")
    for size in ("-3", "5"):  # the same sizes as match: 0 = original, else at least 16
        with pytest.raises(SystemExit):
            cli.main(["eval", "--size", size])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "at least 16 pixels, or 0" in err[0], err


def test_hpf_search_bad_inputs_are_one_line_before_the_model(capsys, tmp_path, monkeypatch):
    import semcorr.models.hpf

    def no_hpf(*a, **k):
        raise AssertionError("the model was built before the inputs were checked")

    monkeypatch.setattr(semcorr.models.hpf, "HyperpixelFlow", no_hpf)
    _fails(capsys, ["hpf-search", "--candidates", "3-5"], "starts from ids 0..beam-1 (3)")
    _fails(capsys, ["hpf-search", "--candidates", "0-99"], "out of range 0..")
    _fails(capsys, ["hpf-search", "--beam", "0"], "--beam 0: give at least 1")
    _fails(capsys, ["hpf-search", "--save", str(tmp_path / "no" / "r.json")], "does not exist")
    _fails(capsys, ["hpf-search", "--save", str(tmp_path / "r.txt")], "unsupported file type")
    _fails(capsys, ["hpf-search", "--dataset", "pfpascal"], "needs --root", rc=1)
    _fails(capsys, ["hpf-search", "--dataset", "nope"], "unknown dataset 'nope'", rc=1)


def test_other_commands_report_user_errors_in_one_line(capsys, tmp_path):
    _fails(capsys, ["data", "layout", "nope"], "unknown dataset 'nope'", rc=1)
    _fails(capsys, ["train", "ncnet", "--config", "nope"], "--config 'nope': no such file", rc=1)
    # engine-based training: sizes and counts are config entries (--set), checked when the run is set up
    with pytest.warns(UserWarning, match="UNTRAINED"):  # the offline config's random backbone, said once
        _fails(capsys, ["train", "sfnet", "--config", "sfnet_synthetic", "--set", "train.batch_size=0",
                        "--out", str(tmp_path / "run")], "train.batch_size must be >= 1, got 0", rc=1)
    missing = tmp_path / "x.pt"
    _fails(capsys, ["train", "sfnet", "--resume", str(missing)], "--resume %s: no such file" % missing)
    _fails(capsys, ["train", "ncnet", "--device", "potato"], "--device potato: not a torch device")
    _fails(capsys, ["data", "check", "pfpascal"], "needs ROOT")
    _fails(capsys, ["data", "check", "pfpascal", str(tmp_path / "none")], "no such folder")


def test_debug_shows_the_traceback_and_the_installed_command_prints_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "semcorr", "match", str(tmp_path / "missing.jpg"), str(tmp_path / "b.jpg")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["semcorr match: error: SRC %s: no such file" % (tmp_path / "missing.jpg")]
    r = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr and "CommandError" in r.stderr
