"""Install metadata: every third-party import is declared, requirements.txt agrees with setup.py, optional
imports name their extra, and a build that cannot see torch stops with the --no-build-isolation message."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from semcorr._optional import optional_import

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DIST_OF = {"skimage": "scikit-image", "PIL": "pillow", "cv2": "opencv-python-headless", "yaml": "pyyaml"}


def _setup_literal(name):
    """A module-level literal assignment of setup.py (read, not executed: executing it starts a build)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no literal %s" % name)


def _req_name(req):
    for sep in "=<>!~[; ":
        req = req.split(sep)[0]
    return req.strip().lower()


def _third_party_imports():
    found = {}
    for base in (ROOT / "semcorr_ext", ROOT / "python" / "semcorr"):
        for path in base.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "optional_import"
                      and node.args and isinstance(node.args[0], ast.Constant)):
                    names = [node.args[0].value]
                else:
                    continue
                for n in names:
                    top = n.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("semcorr", "semcorr_ext"):
                        continue
                    found.setdefault(top, path.relative_to(ROOT))
    return found


def test_every_third_party_import_is_declared():
    runtime = _setup_literal("RUNTIME_REQUIRES")
    extras = _setup_literal("EXTRAS_REQUIRE")
    declared = {"torch"} | {_req_name(r) for r in runtime} | {_req_name(r) for v in extras.values() for r in v}
    imports = _third_party_imports()
    assert {"torch", "numpy", "skimage", "matplotlib"} <= set(imports)  # the scan sees the real imports
    missing = {top: str(p) for top, p in imports.items() if DIST_OF.get(top, top).lower() not in declared}
    assert not missing, "imported but not declared in setup.py (RUNTIME_REQUIRES / EXTRAS_REQUIRE): %s" % missing


def test_requirements_txt_covers_setup_py():
    reqs = {_req_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    wanted = {"torch"} | {_req_name(r) for r in _setup_literal("RUNTIME_REQUIRES")}
    for extra in ("datasets", "dev"):
        wanted |= {_req_name(r) for r in _setup_literal("EXTRAS_REQUIRE")[extra]}
    assert wanted <= reqs, "requirements.txt lacks %s" % sorted(wanted - reqs)


def test_optional_import_names_the_extra():
    assert optional_import("json", extra="x", purpose="p").__name__ == "json"
    with pytest.raises(ModuleNotFoundError) as e:
        optional_import("semcorr_no_such_pkg.sub", extra="datasets", purpose="reading things",
                        package="no-such-pkg")
    msg = str(e.value)
    assert "reading things" in msg and 'semcorr_ext[datasets]' in msg and "pip install no-such-pkg" in msg


def test_optional_import_does_not_hide_errors_inside_an_installed_package(tmp_path, monkeypatch):
    (tmp_path / "semcorr_fake_pkg").mkdir()
    (tmp_path / "semcorr_fake_pkg" / "__init__.py").write_text("import semcorr_fake_missing_inner\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as e:
        optional_import("semcorr_fake_pkg", extra="datasets", purpose="p")
    assert e.value.name == "semcorr_fake_missing_inner" and "semcorr_ext[" not in str(e.value)


def test_build_without_torch_stops_with_the_no_build_isolation_message(tmp_path):
    # What an isolated `pip install .` meets: torch cannot be imported. A copy, so that nothing can write into
    # the shared tree if setup.py went further than it should.
    for name in ("setup.py", "setup_helpers.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--name']; "
            "import runpy; runpy.run_path('setup.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=""))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pip install --no-build-isolation ." in r.stderr and "isolated" in r.stderr
    assert not (tmp_path / "semcorr_ext").exists()  # stopped before writing build info


def test_wheel_metadata_pins_the_build_torch():
    src = (ROOT / "setup.py").read_text()
    # the pin is computed from the torch being compiled against, never a range
    assert 'install_requires=["torch==%s" % torch.__version__.split("+")[0]]' in src


def test_the_test_only_emulator_is_built_in_place_only():
    # setup.py's helpers, without running setup() (guarded by __main__); in a subprocess: it sets MAX_JOBS
    code = r"""
import json, runpy, sys
ns = runpy.run_path("setup.py", run_name="semcorr_setup_under_test")
w = ns["want_emulator"]
print(json.dumps([
    w(["build_ext", "--inplace"], {}), w(["build_ext", "-i"], {}), w(["editable_wheel", "--dist-info-dir", "x"], {}),
    w(["bdist_wheel", "--dist-dir", "d"], {}), w(["egg_info"], {}), w([], {}),
    w(["build_ext", "--inplace"], {"SEMCORR_NO_EMU": "1"}), w(["bdist_wheel"], {"SEMCORR_NO_EMU": "0"}),
]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [ln for ln in r.stdout.splitlines() if ln.startswith("[")][-1]
    assert got == "[true, true, true, false, false, false, false, true]"
