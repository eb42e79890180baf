"""The training configs are package data: setup.py ships every file of semcorr/configs/train in the wheel, and
`--config NAME` resolves through importlib.resources, without the source tree (a copy of the package alone)."""
import ast
import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

from semcorr.train import _engine_config as C

ROOT = Path(__file__).resolve().parents[1]


def _package_data():
    """setup.py's package_data (read with ast: running setup.py would build the extension)."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "package_data":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no package_data")


def test_config_dir_is_inside_the_package():
    import semcorr

    d = C.config_dir()
    assert d.resolve() == (Path(semcorr.__file__).parent / "configs" / "train").resolve()
    assert sorted(p.name for p in d.glob("*.yaml"))  # not empty
    assert not (ROOT / "configs" / "train").exists()  # one copy only


def test_setup_ships_every_config_file():
    patterns = _package_data()["semcorr"]
    pkg = ROOT / "python" / "semcorr"
    files = [p.relative_to(pkg).as_posix() for p in C.config_dir().iterdir() if p.is_file()]
    assert files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert unshipped == [], "not in setup.py package_data: %s" % unshipped


def test_a_config_resolves_by_name_from_a_copy_of_the_package_alone(tmp_path):
    # the package tree as a wheel lays it out (site-packages/semcorr/...), far from the source tree
    site = tmp_path / "site"
    shutil.copytree(ROOT / "python" / "semcorr", site / "semcorr",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import semcorr.train._engine_config as C; p = C.find_config('ncnet_pfpascal'); "
            "print(p); print(C.load_config('ncnet_pfpascal')['method'])")
    env = {k: v for k, v in os.environ.items() if k != "SEMCORR_CONFIG_DIR"}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    path, method = out.stdout.split()
    assert Path(path).resolve() == (site / "semcorr" / "configs" / "train" / "ncnet_pfpascal.yaml").resolve()
    assert method == "ncnet"
