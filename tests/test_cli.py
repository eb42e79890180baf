"""The ``semcorr`` entry point itself."""
import os
import subprocess
import sys

import pytest

import semcorr.commands
from semcorr import cli


def test_every_subcommand_is_listed():
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert {"match", "eval", "data", "train"} <= set(choices)


def test_broken_subcommand_fails_loudly(monkeypatch):
    # a typo in a subcommand module name must not make the command disappear silently
    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + ["no_such_command"])
    with pytest.raises(ModuleNotFoundError, match="no_such_command"):
        cli.build_parser()


# a subcommand module that exists but does not import: each must fail its command naming module and error
_BROKEN = [
    ("import no_such_dependency_xyz\n",
     "failed to import: ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
    ("def add_parser(subparsers:\n", "failed to import: SyntaxError"),
    ("ADD_PARSER = None\n", "has no add_parser"),
]


def _plant(tmp_path, source):
    """semcorr.commands.broken_cmd_xyz from ``source``, in a folder added to the package's search path."""
    (tmp_path / "broken_cmd_xyz.py").write_text(source)
    return str(tmp_path)


@pytest.mark.parametrize("source,message", _BROKEN)
def test_broken_subcommand_module_names_module_and_import_error(tmp_path, monkeypatch, source, message):
    monkeypatch.setattr(semcorr.commands, "__path__", list(semcorr.commands.__path__) + [_plant(tmp_path, source)])
    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + ["broken_cmd_xyz"])
    monkeypatch.delitem(sys.modules, "semcorr.commands.broken_cmd_xyz", raising=False)
    with pytest.raises(cli.SubcommandImportError, match="semcorr.commands.broken_cmd_xyz") as err:
        cli.main(["broken-cmd-xyz"])
    assert message in str(err.value)
    # the other commands still list it (help imports no subcommand module) and still run their own parser
    parser = cli.build_parser("data")
    assert "broken-cmd-xyz" in next(a for a in parser._actions if a.dest == "command").choices


def test_broken_subcommand_exits_nonzero_with_the_message(tmp_path):
    folder = _plant(tmp_path, _BROKEN[0][0])
    code = ("import sys, semcorr.commands as c; c.__path__.append(%r); from semcorr import cli; "
            "cli.SUBCOMMANDS.append('broken_cmd_xyz'); sys.exit(cli.main(['broken-cmd-xyz']))" % folder)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("semcorr.cli.SubcommandImportError: subcommand module semcorr.commands.broken_cmd_xyz")
    assert _BROKEN[0][1] in last
