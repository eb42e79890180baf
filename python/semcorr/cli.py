"""The ``semcorr`` command (also ``python -m semcorr``): one subcommand per module of
:mod:`semcorr.commands`.

A subcommand module ``semcorr.commands.<name>`` exposes ``add_parser(subparsers)``, which adds its parser
(``semcorr <name with - for _>``) and sets ``func`` (called with the parsed arguments; returns an exit code or
None). Every module listed in :data:`SUBCOMMANDS` must exist, and the one being run must import: a missing
module fails the whole command loudly (``ModuleNotFoundError``) and a broken one fails its command with a
:class:`SubcommandImportError` naming the module and its import error (exit code 1), instead of vanishing.

Start-up is fast: only the module of the subcommand being run is imported (``semcorr --help`` imports neither
torch nor any subcommand module; the one-line summaries are :data:`SUMMARIES`), and subcommand modules import
their heavy dependencies inside their functions.

Errors: a mistake of the user (a missing file, an unknown name, a bad value: :class:`CommandError`,
``FileNotFoundError``, ``ValueError``, ``KeyError``, :class:`semcorr.checkpoints.CheckpointError`...) is printed as
ONE line ``semcorr <command>: error: ...`` on stderr with exit code 2 (usage errors) or 1 (anything found while
running); ``--debug`` (or ``SEMCORR_DEBUG=1``) shows the traceback instead.
"""
import argparse
import importlib
import importlib.util
import os
import sys
from typing import List, Optional

__all__ = ["main", "build_parser", "SUBCOMMANDS", "SUMMARIES", "CommandError", "SubcommandImportError",
           "HelpFormatter", "USER_ERRORS", "show_defaults"]

#: subcommand modules, in the order shown by --help (command name: ``_`` -> ``-``)
SUBCOMMANDS = ["match", "eval", "data", "train", "hpf_search"]

#: one-line summary of each subcommand for ``semcorr --help`` (kept here so that --help imports no module)
SUMMARIES = {
    "match": "match two images, a list of pairs (--pairs) or a built-in sample pair; draw and save the matches",
    "eval": "evaluate a model on a benchmark (PCK, per category)",
    "data": "list, describe and check benchmark datasets",
    "train": "train a model (see `semcorr train METHOD --help`)",
    "hpf_search": "HPF's beam search for hyperpixel layer ids (validation split, mean per-pair PCK)",
}


class CommandError(Exception):
    """A user error found by a command (bad input, missing file...): printed as one line, exit code 2."""

    exit_code = 2


#: exception types that are a user's mistake, not a bug: one line on stderr (traceback with --debug)
USER_ERRORS = (CommandError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
               ValueError, KeyError, ModuleNotFoundError)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps description layouts and appends ``(default: X)`` to every option help that does not name its
    default already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text.lower() and action.default not in (None, False, argparse.SUPPRESS, [])
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def show_defaults(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every option of ``parser`` without a help text one that shows its default (argparse prints nothing,
    defaults included, for an option without help)."""
    for action in parser._actions:
        if action.option_strings and not (action.help or "").strip() and action.help is not argparse.SUPPRESS \
                and action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
            action.help = "default: %(default)s"
    return parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``semcorr match: error: ... (see --help)``)."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def command_name(module: str) -> str:
    """``hpf_search`` -> ``hpf-search``: module names cannot hold ``-``."""
    return module.replace("_", "-")


def _selected(argv: List[str]) -> Optional[str]:
    """The subcommand module named by the first non-option argument (None: none / unknown)."""
    for tok in argv:
        if not tok.startswith("-"):
            for mod in SUBCOMMANDS:
                if tok in (mod, command_name(mod)):
                    return mod
            return None
    return None


class SubcommandImportError(ImportError):
    """A subcommand module that exists but does not import (a typo, a missing dependency): a bug of the
    installation, not of the user, so it is raised with the original error chained, never skipped."""


def _import_subcommand(full: str):
    try:
        module = importlib.import_module(full)
    except Exception as e:
        raise SubcommandImportError("subcommand module %s failed to import: %s: %s"
                                    % (full, type(e).__name__, e), name=full) from e
    if not callable(getattr(module, "add_parser", None)):
        raise SubcommandImportError("subcommand module %s has no add_parser(subparsers)" % full, name=full)
    return module


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``semcorr`` parser. Only the subcommand module ``command`` (None: none) is imported and gets its full
    parser; the others are listed with their :data:`SUMMARIES` line (and must exist)."""
    from semcorr import __version__

    parser = _Parser(
        prog="semcorr", formatter_class=HelpFormatter,
        description="Semantic correspondence with the semcorr_ext ops: match images, evaluate models on "
                    "benchmarks, train, prepare data. `semcorr COMMAND --help` lists each command's options.")
    parser.add_argument("--version", action="version", version="semcorr %s" % __version__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in SUBCOMMANDS:
        full = "semcorr.commands.%s" % mod
        if mod == command:
            p = _import_subcommand(full).add_parser(sub)
        else:
            if importlib.util.find_spec(full) is None:
                raise ModuleNotFoundError("subcommand module %s does not exist" % full, name=full)
            p = sub.add_parser(command_name(mod), help=SUMMARIES.get(mod), add_help=False)
        if p is not None:  # --debug after the subcommand too; SUPPRESS keeps a --debug given before it
            p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                           help="show the traceback of an error")
    return parser


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])  # str(KeyError) quotes its message
    if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)) and e.filename:
        return "%s: %s" % (e.strerror or type(e).__name__, e.filename)
    return str(e) or type(e).__name__


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _selected(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False) or os.environ.get("SEMCORR_DEBUG") == "1"
    prog = "semcorr %s" % command_name(command) if command else "semcorr"
    try:
        rc = func(args)
    except USER_ERRORS as e:
        if debug:
            raise
        hint = "" if isinstance(e, CommandError) else " (--debug shows where)"  # raised deeper than a check
        print("%s: error: %s%s" % (prog, " ".join(_message(e).split()), hint), file=sys.stderr)
        return getattr(e, "exit_code", 1)
    except KeyboardInterrupt:
        if debug:
            raise
        print("%s: interrupted" % prog, file=sys.stderr)
        return 130
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
