"""Offline proof that the NC-Net and Sparse NC-Net recipes train: a short run of each on the bundled synthetic
pairs (``semcorr/configs/train/*_synthetic.yaml`` with tiny overrides: HOG features, 64 px, a small consensus), written to
``OUT/<method>/{log.jsonl,steps.jsonl,curves.png}`` plus a summary ``OUT/summary.json`` (first / last epoch loss,
validation loss and validation PCK).

    python benchmarks/train_curves.py --out benchmarks/train_curves            # ~1 min on one CPU core
    python benchmarks/train_curves.py --epochs 6 --size 96 --out /tmp/curves

The tiny settings change the network (HOG instead of ResNet-101, fewer channels) and the data, not the recipe
(optimizer, learning rate, loss): they show the loop, loss and gradients work end to end, not the papers' numbers.
"""
import argparse
import json
import os
import sys
from typing import Dict, List

CONFIGS = {"ncnet": "ncnet_synthetic", "sparse-ncnet": "sparse_ncnet_synthetic"}


def tiny_overrides(epochs: int = 4, size: int = 64, batch: int = 4) -> List[str]:
    """The overrides that make a synthetic recipe run in seconds on a CPU."""
    imgs = "[astronaut, chelsea, coffee]"
    val_imgs = "[astronaut, chelsea, coffee, rocket]"
    return ["model.backbone=hog", "model.weights=null", "model.kernel_sizes=[5,5]", "model.channels=[4,1]",
            "train.epochs=%d" % epochs, "train.batch_size=%d" % batch,
            "data.train={kind: synthetic, image_size: %d, repeats: 2, images: %s}" % (size, imgs),
            "data.val={kind: synthetic, image_size: %d, repeats: 1, seed: 1000, images: %s}" % (size, val_imgs),
            "data.pck={dataset: synthetic, image_size: %d, seed: 2000, stereo: false, images: %s, alpha: 0.1, "
            "thresh: img}" % (size, val_imgs)]


def run_method(method: str, out: str, epochs: int = 4, size: int = 64, progress: bool = False) -> Dict:
    """Train ``method`` with the tiny synthetic settings into ``out``; returns the engine's result."""
    import importlib

    from semcorr.train import _engine, _engine_config

    mod = importlib.import_module("semcorr.train.%s" % method.replace("-", "_"))
    cfg = _engine_config.apply_overrides(_engine_config.load_config(CONFIGS[method]),
                                         tiny_overrides(epochs, size) + ["run.out=%s" % out])
    return _engine.train(mod.RECIPE, cfg, progress=progress)


def summarize(history: List[Dict]) -> Dict:
    first, last = history[0], history[-1]
    return {k: {"first": first.get(k), "last": last.get(k)} for k in ("loss", "val_loss", "val_pck")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/train_curves")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--methods", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = p.parse_args(argv)
    summary = {}
    for m in args.methods:
        res = run_method(m, os.path.join(args.out, m), args.epochs, args.size, progress=True)
        summary[m] = summarize(res["history"])
        print(m, json.dumps(summary[m]), file=sys.stderr)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"epochs": args.epochs, "size": args.size, "methods": summary}, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
