"""Subcommands of the ``semcorr`` command line (see :mod:`semcorr.cli`).

Each module ``<name>.py`` here defines ``add_parser(subparsers)`` which registers ``semcorr <name>`` and
sets its ``func``; add the name to ``semcorr.cli.SUBCOMMANDS``.
"""
