"""The ``semcorr`` entry point itself."""
import pytest

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
