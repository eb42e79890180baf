"""The ``semcorr`` command (also ``python -m semcorr``): one subcommand per module of
:mod:`semcorr.commands`.

A subcommand module ``semcorr.commands.<name>`` exposes ``add_parser(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed arguments; returns an exit code or None). Every module listed in
:data:`SUBCOMMANDS` must import: a broken subcommand fails the whole command loudly instead of vanishing.
"""
import argparse
import importlib
import sys
from typing import List, Optional

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: subcommand modules, in the order shown by --help
SUBCOMMANDS = ["match", "eval", "data", "train", "hpf_search"]


def build_parser() -> argparse.ArgumentParser:
    from semcorr import __version__

    parser = argparse.ArgumentParser(
        prog="semcorr", description="Semantic correspondence with the semcorr_ext ops: match images, evaluate "
                                    "models on benchmarks, prepare data.")
    parser.add_argument("--version", action="version", version="semcorr %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module("semcorr.commands.%s" % name).add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    rc = func(args)
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
