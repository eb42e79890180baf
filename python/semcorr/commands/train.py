"""``semcorr train METHOD ...``: one training loop per method, in ``semcorr.train.<method>``.

A method module exposes ``add_arguments(parser)`` and ``run(args)``; methods whose module does not exist
(yet) are not listed, so each can be added without editing this file. ``--help`` of every method shows the
defaults (:class:`semcorr.cli.HelpFormatter`).
"""
import importlib
import pkgutil

__all__ = ["add_parser", "methods"]


def methods():
    """Module names of the training loops (``semcorr.train.<name>``; private ``_*`` modules excluded)."""
    import semcorr.train as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def add_parser(subparsers):
    from semcorr.cli import SUMMARIES, HelpFormatter, command_name, show_defaults

    names = [command_name(n) for n in methods()]
    p = subparsers.add_parser("train", help=SUMMARIES["train"], formatter_class=HelpFormatter,
                              description="Train a model. Methods: %s. `semcorr train METHOD --help` lists "
                                          "each method's options and defaults." % ", ".join(names))
    sub = p.add_subparsers(dest="method", metavar="METHOD", title="methods")
    for name in methods():
        mod = importlib.import_module("semcorr.train.%s" % name)
        # a module name cannot hold "-": sparse_ncnet is the command sparse-ncnet (the model's name), alias kept
        cmd = command_name(name)
        doc = (mod.__doc__ or "").strip()
        mp = sub.add_parser(cmd, aliases=[name] if cmd != name else [], help=doc.splitlines()[0] if doc else None,
                            description=doc or None, formatter_class=HelpFormatter)
        show_defaults(mod.add_arguments(mp) or mp)
        mp.set_defaults(func=mod.run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p
