"""``semcorr train METHOD ...``: one training loop per method, in ``semcorr.train.<method>``.

A method module exposes ``add_arguments(parser)`` and ``run(args)``; methods whose module does not exist
(yet) are not listed, so each can be added without editing this file.
"""
import importlib
import pkgutil


def _methods():
    import semcorr.train as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a model (see `semcorr train METHOD --help`)")
    sub = p.add_subparsers(dest="method", metavar="METHOD")
    for name in _methods():
        mod = importlib.import_module("semcorr.train.%s" % name)
        # a module name cannot hold "-": sparse_ncnet is the command sparse-ncnet (the model's name), alias kept
        cmd = name.replace("_", "-")
        mp = sub.add_parser(cmd, aliases=[name] if cmd != name else [],
                            help=(mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else None)
        mod.add_arguments(mp)
        mp.set_defaults(func=mod.run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
