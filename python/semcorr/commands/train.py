"""``semcorr train METHOD ...``: one training loop per method, in ``semcorr.train.<method>``.

A method module exposes ``RECIPE`` (a :class:`semcorr.train._engine.Recipe`: the engine's options and loop), or
for a loop of its own ``add_arguments(parser)`` and ``run(args)``; methods whose module does not exist (yet)
are not listed, so each can be added without editing this file. ``--help`` of every method shows the
defaults (:class:`semcorr.cli.HelpFormatter`).
"""
import functools
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
        recipe = getattr(mod, "RECIPE", None)
        mp = sub.add_parser(cmd, aliases=[name] if cmd != name else [], help=doc.splitlines()[0] if doc else None,
                            description=doc or None, formatter_class=HelpFormatter,
                            epilog=_config_summary(recipe.default_config) if recipe is not None else None)
        add_arguments, run = _entry_points(mod)
        show_defaults(add_arguments(mp) or mp)
        mp.set_defaults(func=_checked(run))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def _entry_points(mod):
    """(add_arguments(parser), run(args)) of a method module: the engine's for a ``RECIPE``, else its own."""
    recipe = getattr(mod, "RECIPE", None)
    if recipe is None:
        return mod.add_arguments, mod.run
    from semcorr.train import _engine as E

    add_arguments = functools.partial(E.add_engine_arguments, default_config=recipe.default_config)
    return add_arguments, functools.partial(E.run, recipe)


def _config_summary(name: str) -> str:
    """The main settings of an engine method's default config, for its ``--help`` (all of them:
    ``--print-config``)."""
    from semcorr.train import _engine_config as C

    try:
        cfg = C.load_config(name)
    except Exception as e:  # a broken config file must not break --help; running it reports the error
        return "default config %s: cannot be read (%s)" % (name, e)
    lines = ["default config %s (change with --set KEY=VALUE; all of it: --print-config):" % name]
    for section in ("model", "optimizer", "scheduler", "train"):
        value = cfg.get(section)
        if isinstance(value, dict):
            lines.append("  %-10s %s" % (section + ":", ", ".join("%s=%s" % kv for kv in value.items())))
    train_data = (cfg.get("data") or {}).get("train")
    if isinstance(train_data, dict):
        lines.append("  %-10s %s" % ("data:", ", ".join("%s=%s" % kv for kv in train_data.items())))
    return "\n".join(lines)


def check_common(args) -> None:
    """The options every training loop shares, checked before anything is built (one-line
    :class:`semcorr.cli.CommandError`): the device and the checkpoint to resume from. Sizes, counts and the rest
    are config entries (``--set``), which the engine checks when it sets the run up."""
    import os

    from semcorr.cli import CommandError
    from semcorr.commands._checks import check_device

    if getattr(args, "device", None) is not None:
        check_device(args.device)
    resume = getattr(args, "resume", None)
    if resume not in (None, "auto") and not os.path.isfile(resume):
        raise CommandError("--resume %s: no such file (or 'auto' for OUT/last.pt when present)" % resume)


def _checked(run):
    def checked_run(args):
        check_common(args)
        return run(args)

    return checked_run

