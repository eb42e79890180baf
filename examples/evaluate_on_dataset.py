"""Evaluate a model on a dataset folder (the Python side of `semcorr eval`).

    python examples/evaluate_on_dataset.py                                 # offline synthetic benchmark
    python examples/evaluate_on_dataset.py --dataset pfpascal --root data/PF-PASCAL --method ncnet \
        --checkpoint ncnet_pfpascal.pth.tar

`semcorr data layout NAME` shows the folder layout each loader reads; `semcorr data check NAME ROOT` what is
missing from a download. The results (per-category PCK, per-pair records, figures) go to --out.
"""
import argparse

from semcorr.eval.runner import EvalConfig, evaluate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="nn")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--root", default=None, help="the dataset folder as downloaded (not for synthetic)")
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    p.add_argument("--checkpoint", default=None, help="trained weights (published layout or `semcorr train`'s)")
    p.add_argument("--out", default="semcorr_eval/example")
    args = p.parse_args(argv)

    model_kwargs = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    cfg = EvalConfig(method=args.method, dataset=args.dataset, root=args.root, limit=args.limit, out=args.out,
                     model_kwargs=model_kwargs, device="cpu", progress=False, figures=False)
    results = evaluate(cfg)  # prints the per-category table; also writes OUT/results.json
    return results


if __name__ == "__main__":
    main()
