"""``semcorr data``: the benchmark datasets on disk.

    semcorr data list                       the datasets and what each reports
    semcorr data layout spair               the folder layout a loader expects
    semcorr data check pfpascal data/PF-PASCAL [--split test]
                                            what is missing from a download

Nothing is downloaded: fetch the archives from the datasets' pages (see the README), unpack,
then point ``check`` and ``semcorr eval --root`` at the folder.
"""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]

SUMMARY = {
    "pfpascal": "PF-PASCAL: 300 test pairs, 20 classes; PCK alpha_img (alpha_bbox when Annotations/ present)",
    "pfwillow": "PF-WILLOW: 900 pairs, 10 classes; PCK on the target keypoint box",
    "spair": "SPair-71k: 12,234 test pairs, 18 classes; PCK alpha_bbox, per variation level",
    "caltech": "Caltech-101: 1,515 pairs, 101 classes; LT-ACC, IoU, LOC-ERR by mask transfer",
    "tss": "TSS: 400 pairs x 2 directions, 3 groups; flow PCK (alpha_img) on foreground pixels",
    "synthetic": "synthetic: scikit-image photos under affine/TPS warps + stereo pair; offline, no --root",
}


def _list(args) -> int:
    for name, text in SUMMARY.items():
        print(f"{name:<10} {text}")
    return 0


def _layout(args) -> int:
    from semcorr.data.datasets import dataset_class

    cls = dataset_class(args.name)
    print(f"{cls.name}: expected layout under ROOT")
    print(cls.layout().strip("\n"))
    return 0


def _check(args) -> int:
    import os

    from semcorr.cli import CommandError
    from semcorr.data.datasets import dataset_class

    cls = dataset_class(args.name)
    if cls.name != "synthetic" and args.root is None:
        raise CommandError(f"check {args.name} needs ROOT (the folder you unpacked)")
    if args.root is not None and not os.path.isdir(args.root):
        raise CommandError(f"check {args.name} {args.root}: no such folder")
    rep = cls.check(args.root, split=args.split)
    print(rep.format())
    if not rep.ok:
        print(f"\nexpected layout:\n{cls.layout().strip(chr(10))}")
    return 0 if rep.ok else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    from semcorr.cli import SUMMARIES, HelpFormatter

    names = ", ".join(SUMMARY)
    p = subparsers.add_parser("data", help=SUMMARIES["data"], description=__doc__, formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    q = sub.add_parser("list", help="the supported datasets")
    q.set_defaults(func=_list)
    q = sub.add_parser("layout", help="the folder layout a dataset loader reads")
    q.add_argument("name", help=f"dataset: {names}")
    q.set_defaults(func=_layout)
    q = sub.add_parser("check", help="report what is missing from a downloaded dataset", formatter_class=HelpFormatter)
    q.add_argument("name", help=f"dataset: {names}")
    q.add_argument("root", nargs="?", default=None, help="the folder you unpacked (not for synthetic)")
    q.add_argument("--split", default="test", help="pair split to check (default: test)")
    q.set_defaults(func=_check)
    return p
