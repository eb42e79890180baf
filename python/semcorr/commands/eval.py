"""``semcorr eval``: evaluate a model on a benchmark.

    semcorr eval --method ncnet --dataset pfpascal --root data/PF-PASCAL --model-arg checkpoint=ncnet_pfpascal.pth.tar
    semcorr eval --method hpf --dataset spair --root data/SPair-71k --protocol uniform --size 240
    semcorr eval --method nn --dataset synthetic
    torchrun --nproc_per_node 2 -m semcorr eval --method nn --dataset spair --root data/SPair-71k

``--protocol paper`` (default) evaluates as the method's published evaluation script does (input size,
padding, readout direction, coordinate convention, threshold, split: see docs/EVALUATION.md); where the paper
reports nothing on the dataset it says so and uses the uniform setting. ``--protocol uniform`` squashes both
images to ``--size`` and reads source -> target for every method (for comparing methods with each other).
Prints a per-category table (and an ``UNTRAINED: ...`` line for models with random parts), writes
``config.json``, ``results.json``, ``pairs/pairs-rank*.jsonl`` (one record per pair, used by ``--resume``: its
PCK counts and its predicted and true keypoints ``pred_kps`` / ``gt_kps`` in the pixels PCK is measured in)
and figures (``pck_curve.png``, ``qualitative.png``) into ``--out``.
"""
from __future__ import annotations

import argparse
import ast
import sys

__all__ = ["add_parser", "run", "main"]


def _kv(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        val = ast.literal_eval(v)
    except (ValueError, SyntaxError):
        val = v
    return k, val


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from semcorr.commands._checks import MIN_SIZE, size_arg
    from semcorr.data.datasets import NAMES
    from semcorr.models import available_models

    p.add_argument("--method", "-m", default="nn",
                   help="model: %s (identity: the no-motion baseline)" % ", ".join(available_models()))
    p.add_argument("--dataset", "-d", default="synthetic", help=f"one of: {', '.join(NAMES)}")
    p.add_argument("--root", "-r", default=None, help="dataset folder as downloaded (not needed for synthetic)")
    p.add_argument("--protocol", default="paper",
                   help="paper (default: the method's published evaluation), uniform (one common setting: "
                        "--size squash, source -> target), a protocol key such as sfnet/pfpascal-bbox, or "
                        "list (print the protocols and exit; see docs/EVALUATION.md)")
    p.add_argument("--split", default=None,
                   help="pair split (test, val, trn) where the dataset has several (default: the protocol's, test)")
    p.add_argument("--alpha", type=float, nargs="+", default=None,
                   help="PCK alphas to report (default: the protocol's; uniform: 0.05 0.1 0.15)")
    p.add_argument("--thresh", choices=["img", "bbox", "kpbox"], default=None,
                   help="PCK reference length (default: the benchmark's: pfpascal/tss/synthetic img, "
                        "spair bbox, pfwillow kpbox)")
    p.add_argument("--size", type=size_arg, default=240,
                   help="uniform setting only: resize both images to SIZE x SIZE (at least %d; 0 = keep original "
                        "sizes, evaluated one pair at a time; default: 240); published protocols set their own "
                        "sizes" % MIN_SIZE)
    p.add_argument("--batch-size", type=int, default=4, help="pairs per batch (default: 4)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N pairs")
    p.add_argument("--out", "-o", default=None, help="output folder (default: semcorr_eval/<method>-<dataset>)")
    p.add_argument("--resume", action="store_true", help="skip pairs already recorded in --out")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the model (repeatable), e.g. --model-arg backbone=hog")
    p.add_argument("--dataset-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the dataset (repeatable), e.g. --dataset-arg repeats=3")
    p.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    from semcorr.cli import SUMMARIES, HelpFormatter

    p = subparsers.add_parser("eval", help=SUMMARIES["eval"], description=__doc__, formatter_class=HelpFormatter)
    return configure(p)


def check_inputs(args) -> None:
    """Every input checked before a dataset is read or a model built (one-line :class:`semcorr.cli.CommandError`)."""
    import os

    from semcorr.cli import CommandError
    from semcorr.commands._checks import check_device, check_method, check_model_args
    from semcorr.data.datasets import dataset_class

    if args.method != "identity":
        method = check_method(args.method)
        check_model_args(method, dict(args.model_arg))
        ck = dict(args.model_arg).get("checkpoint")
        if isinstance(ck, str) and not os.path.isfile(ck):
            raise CommandError("--model-arg checkpoint=%s: no such file" % ck)
    try:
        cls = dataset_class(args.dataset)
    except ValueError as e:
        raise CommandError("--dataset %s" % e)
    if cls.name != "synthetic":
        if args.root is None:
            raise CommandError("--dataset %s needs --root (the folder you downloaded; `semcorr data layout %s` "
                               "shows what it holds)" % (args.dataset, args.dataset))
        if not os.path.isdir(args.root):
            raise CommandError("--root %s: no such folder" % args.root)
    if args.device is not None:
        check_device(args.device)
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit %d: give at least 1 pair" % args.limit)
    if args.batch_size < 1:
        raise CommandError("--batch-size %d: give at least 1" % args.batch_size)
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandError("--out %s: is a file, not a folder" % args.out)


def run(args) -> int:
    from semcorr.eval.runner import EvalConfig, evaluate

    if args.protocol == "list":
        from semcorr.eval.protocols import PROTOCOLS

        for key, p in PROTOCOLS.items():
            d = p.describe()
            print(f"{key:<22} {d['input']}; {p.direction.upper()} ({d['transfer']}); PCK in {d['frame']}, "
                  f"L {p.thresh}; " + "; ".join(f"{w}: {n}" for w, n in p.published))
        return 0

    check_inputs(args)
    out = args.out or f"semcorr_eval/{args.method}-{args.dataset}"
    cfg = EvalConfig(method=args.method, dataset=args.dataset, root=args.root, split=args.split,
                     alphas=tuple(args.alpha) if args.alpha else None, size=(args.size or None),
                     protocol=args.protocol, batch_size=args.batch_size,
                     limit=args.limit, out=out, resume=args.resume, thresh=args.thresh,
                     device=args.device, num_workers=args.workers,
                     model_kwargs=dict(args.model_arg), dataset_kwargs=dict(args.dataset_arg),
                     progress=not args.no_progress, figures=not args.no_figures)
    evaluate(cfg)
    return 0


def main(argv=None) -> int:
    """``python -m semcorr.commands.eval ARGS`` (e.g. under torchrun) is ``semcorr eval ARGS``."""
    from semcorr.cli import main as cli_main

    return cli_main(["eval"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # python -m semcorr.commands.eval (e.g. under torchrun)
    sys.exit(main())
