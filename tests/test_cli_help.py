"""Help texts list the choices and defaults, one name per model, the registry is complete at import, and
`semcorr --help` starts fast: it imports no heavy module (measured by what it imports, not by wall-clock time)."""
import json
import os
import subprocess
import sys

import pytest

from semcorr import cli

HEAVY = ("torch", "torchvision", "numpy", "skimage", "matplotlib", "scipy", "timm", "semcorr_ext")


def _python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], []])
def test_top_level_help_imports_nothing_heavy(argv):
    out = _python(
        "import io, json, sys, contextlib\n"
        "from semcorr.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        main(%r)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps({'text': buf.getvalue(), 'modules': sorted(sys.modules)}))\n" % (argv,))
    res = json.loads(out.strip().splitlines()[-1])
    heavy = sorted(m for m in res["modules"] if m.split(".")[0] in HEAVY)
    assert heavy == [], "semcorr %s imported %s" % (" ".join(argv), heavy[:10])
    assert not any(m.startswith("semcorr.commands.") for m in res["modules"])
    if argv != ["--version"]:
        for name in ("match", "eval", "data", "train", "hpf-search"):
            assert name in res["text"]


def test_match_help_lists_every_model_once_and_the_defaults(capsys):
    from semcorr.models import ALIASES, available_models

    with pytest.raises(SystemExit):
        cli.main(["match", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in available_models():
        assert name in text
    assert "aliases:sparse_ncnet=sparse-ncnet" in "".join(text.split()) and ALIASES == {"sparse_ncnet": "sparse-ncnet"}
    assert text.count("sparse_ncnet") == 1
    assert "default: 240" in text and "default: cpu" in text and "0 = original size" in text


def test_eval_and_train_help_show_choices_and_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "pfpascal, pfwillow, spair, caltech, tss, synthetic" in text
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("sfnet", "ncnet", "sparse-ncnet", "scnet", "pmnc", "macosnet"):
        assert name in text
    with pytest.raises(SystemExit):
        cli.main(["train", "sfnet", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # the published recipe is the default config (its schedule: semcorr train sfnet --print-config)
    assert "default sfnet_voc" in text and "--set KEY=VALUE" in text


def test_registry_is_complete_at_import_and_build_model_documents_it():
    out = _python("import json, semcorr.models as M\nprint(json.dumps([sorted(M.MODELS), M.ALIASES]))")
    names, aliases = json.loads(out)
    assert {"nn", "hpf", "scnet", "ncnet", "sparse-ncnet", "pmnc", "sfnet", "macosnet", "dino", "identity"} <= set(names)
    assert aliases == {"sparse_ncnet": "sparse-ncnet"} and "sparse_ncnet" not in names

    from semcorr import models

    doc = models.build_model.__doc__
    for name, cls in models.MODELS.items():
        assert "``%s``" % name in doc, name
        assert cls.__name__ in doc, (name, cls.__name__)  # the class the table points at
    assert isinstance(models.build_model("sparse_ncnet", backbone="daisy"), models.MODELS["sparse-ncnet"])
    with pytest.raises(KeyError, match="unknown model 'nope'; available: dino, hpf"):
        models.build_model("nope")


def test_identity_is_a_model_with_eval_s_rule():
    import torch

    from semcorr.eval.runner import IdentityBaseline
    from semcorr.models import build_model

    src, tgt = torch.rand(1, 3, 40, 60), torch.rand(1, 3, 30, 90)
    kps = torch.tensor([[[0.0, 0.0], [59.0, 39.0], [12.3, 7.9], [-1.0, -1.0]]])
    got = build_model("identity").match(src, tgt).transfer_keypoints(kps)
    want = IdentityBaseline().match(src, tgt).transfer_keypoints(kps)
    torch.testing.assert_close(got, want.to(got.dtype), atol=1e-4, rtol=0)
    torch.testing.assert_close(got[0, 2], torch.tensor([12.3 * 1.5, 7.9 * 0.75]), atol=1e-4, rtol=0)
