"""``semcorr hpf-search``: HPF's beam search for hyperpixel layer ids.

The published search (juhongm999/hpf ``beamsearch.py``, the default here):

* depth 0 scores the single ids ``0 .. beam-1`` (``candidate_base = [[i] for i in range(beamsize)]``);
* each further depth extends every set of the beam by one id *larger than the set's smallest id* and not in
  it; as published, the first extension that repeats a set already scored at this depth ends the extensions
  of that beam entry (``break``, not ``continue``);
* the beam keeps the ``beam`` best sets (stable sort), ``max_depth`` depths in all (sets of up to 8 ids),
  no early stop; the answer is the best set seen at any depth (strictly better replaces);
* the score is HPF's evaluation (``evaluate.run``): images resized so that the longer side is at most 300,
  source -> target, **mean over pairs of per-pair PCK**, alpha 0.1, on the benchmark's **validation split**,
  with ``beamsearch.py``'s default threshold ``bbox`` (PF-WILLOW: the target keypoint box).

Backbone features of every candidate id are computed once per image and reused by every set (same numbers,
less time). ``--search greedy`` is our earlier variant (all single ids first, any id added, stop when a size
does not improve, pooled-keypoint PCK on synthetic pairs), kept as a named option.

    semcorr hpf-search --dataset pfpascal --root data/PF-PASCAL --backbone resnet101      # published
    semcorr hpf-search --dataset synthetic --limit 4 --max-depth 3 --candidates 0-7       # offline smoke run
"""
import math
import time

import torch

__all__ = ["add_parser", "run", "beam_search", "published_beam_search", "protocol_pairs", "score_ids"]


def add_parser(subparsers):
    from semcorr.cli import SUMMARIES, HelpFormatter

    p = subparsers.add_parser("hpf-search", help=SUMMARIES["hpf_search"], description=__doc__,
                              formatter_class=HelpFormatter)
    p.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101"],
                   help="ResNet depth (beamsearch.py's default: resnet50)")
    p.add_argument("--weights", default="auto",
                   help="auto (ImageNet if cached, else random), imagenet, none, or a state-dict path")
    p.add_argument("--search", default="published", choices=["published", "greedy"],
                   help="published (HPF's beamsearch.py, default) or greedy (ours: all singles, any id, early stop)")
    p.add_argument("--dataset", default="synthetic",
                   help="pfpascal, pfwillow, spair (with --root) or synthetic (offline, default)")
    p.add_argument("--root", default=None, help="benchmark folder as downloaded")
    p.add_argument("--split", default="val", help="pair split (HPF searches on val)")
    p.add_argument("--thresh", default=None, choices=["img", "bbox"],
                   help="PCK reference length in HPF's terms (default: bbox as beamsearch.py; img on the "
                        "synthetic benchmark, which has no boxes). PF-WILLOW's bbox is the keypoint box")
    p.add_argument("--alpha", type=float, default=0.1, help="PCK alpha (default 0.1)")
    p.add_argument("--beam", type=int, default=4, help="beam size (default 4; also the number of base ids)")
    p.add_argument("--max-depth", type=int, default=8, help="search depths, i.e. the largest set (default 8)")
    p.add_argument("--candidates", default=None, help="candidate ids, e.g. '0-16' or '2,7,11' (default: all)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N validation pairs")
    # greedy (ours) only
    p.add_argument("--pairs", type=int, default=4, help="greedy: number of synthetic pairs (default 4)")
    p.add_argument("--size", type=int, default=128, help="greedy: synthetic image side (default 128)")
    p.add_argument("--max-layers", type=int, default=3, help="greedy: largest layer set (default 3)")
    p.add_argument("--seed", type=int, default=0, help="greedy: synthetic pair seed (default 0)")
    p.add_argument("--save", default=None, metavar="FILE.json",
                   help="write the result (best ids, score, settings, every scored set by depth) as JSON")
    p.set_defaults(func=run)
    return p


def _parse_candidates(spec, n_ids):
    if spec is None:
        return list(range(n_ids))
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    bad = [i for i in out if not 0 <= i < n_ids]
    if bad:
        raise ValueError("candidate ids %s out of range 0..%d" % (bad, n_ids - 1))
    return sorted(set(out))


def _validation_pairs(n, size, seed):
    from semcorr.data.datasets.base import to_float_rgb
    from semcorr.data.synthetic import SyntheticPairs

    ds = SyntheticPairs(size=size, seed=seed, stereo=False, n_kps=10)
    pairs = []
    for i in range(min(n, len(ds))):
        raw = ds.load_raw(i)
        t = lambda a: torch.from_numpy(to_float_rgb(a)).float().permute(2, 0, 1)[None]  # noqa: E731
        pairs.append((t(raw.src_img), t(raw.tgt_img), torch.as_tensor(raw.src_kps).float(),
                      torch.as_tensor(raw.tgt_kps).float()))
    return pairs


@torch.no_grad()
def _score(model, cache, pairs, ids, alpha):
    """Mean PCK@alpha_img of HPF with the given layer ids over the validation pairs."""
    from semcorr.models.hpf import transfer_keypoints_hpf

    hits, total = 0, 0
    for (src, tgt, skp, tkp), (cs, ct) in zip(pairs, cache):
        fs, rf_jump = model.hyperimage(src, ids, cache={i: cs[i] for i in ids})
        ft, _ = model.hyperimage(tgt, ids, cache={i: ct[i] for i in ids})
        conf, sbox, tbox, _ = model.match_hyperpixels(fs, ft, tuple(src.shape[-2:]), tuple(tgt.shape[-2:]), rf_jump)
        best = conf[0].argmax(1)
        pred = transfer_keypoints_hpf(skp, sbox, tbox, best)
        L = max(tgt.shape[-2:])
        err = (pred - tkp).norm(dim=-1)
        hits += int((err <= alpha * L).sum())  # NaN (no covering box) counts as a miss
        total += len(tkp)
    return hits / max(total, 1)


def beam_search(model, pairs, candidates, beam=2, max_layers=3, alpha=0.1, log=print):
    """``--search greedy`` (ours, not HPF's): every single id first, sets grown by any id, stop when a size
    does not improve; pooled-keypoint PCK. Returns (best ids, best PCK, history [(size, [(ids, pck), ...])])."""
    cache = [(model.layer_features(s, candidates), model.layer_features(t, candidates)) for s, t, _, _ in pairs]
    frontier = [()]
    best_ids, best_pck, history = None, -1.0, []
    for size in range(1, max_layers + 1):
        sets = sorted({tuple(sorted(ids + (c,))) for ids in frontier for c in candidates if c not in ids})
        scored = sorted(((ids, _score(model, cache, pairs, ids, alpha)) for ids in sets), key=lambda x: -x[1])
        history.append((size, scored))
        log("size %d: best %s PCK %.4f (%d sets)" % (size, scored[0][0], scored[0][1], len(scored)))
        if scored[0][1] <= best_pck:
            break
        best_ids, best_pck = scored[0]
        frontier = [ids for ids, _ in scored[:beam]]
    return best_ids, best_pck, history


# ----------------------------------------------------------------------------------------------------------
# the published search
# ----------------------------------------------------------------------------------------------------------

def protocol_pairs(dataset: str, root=None, split: str = "val", thresh=None, limit=None, **dataset_kwargs):
    """The validation pairs prepared under HPF's protocol (300-px longer side, S2T, frame = resized input):
    a list of :class:`semcorr.eval.protocol_geometry.PairInputs`, and the reference-length kind used."""
    from semcorr.data.datasets import build_dataset
    from semcorr.eval.protocol_geometry import pair_inputs
    from semcorr.eval.protocols import PROTOCOLS

    ds = build_dataset(dataset, root, split=split, size=None, **dataset_kwargs)
    name = ds.name
    proto = PROTOCOLS.get(f"hpf/{name}") or PROTOCOLS["hpf/pfpascal"]     # the geometry is the same for all
    if thresh is None:
        thresh = "img" if name == "synthetic" else "bbox"
    kind = "kpbox" if (thresh == "bbox" and name == "pfwillow") else thresh
    n = len(ds) if limit is None else min(int(limit), len(ds))
    pairs = [pair_inputs(ds[i], proto) for i in range(n)]
    bad = [i for i, x in enumerate(pairs) if not (math.isfinite(x.thresh[kind]) and x.thresh[kind] > 0)]
    if bad:
        raise ValueError(f"hpf-search: --thresh {thresh} is undefined for pair {bad[0]} of {name} "
                         f"(no object box?); use --thresh img")
    return pairs, kind


@torch.no_grad()
def score_ids(model, cache, pairs, ids, alpha: float, kind: str) -> float:
    """HPF's ``evaluate.run(..., beamsearch=True)``: mean over pairs of per-pair PCK@alpha (a fraction) of
    HPF with layer ``ids``; a keypoint covered by no source box (NaN) counts as wrong, as published."""
    from semcorr.models.hpf import transfer_keypoints_hpf

    total = 0.0
    for x, (cs, ct) in zip(pairs, cache):
        src, tgt = x.q_in[None], x.r_in[None]
        fs, rf_jump = model.hyperimage(src, ids, cache={i: cs[i] for i in ids})
        ft, _ = model.hyperimage(tgt, ids, cache={i: ct[i] for i in ids})
        conf, sbox, tbox, _ = model.match_hyperpixels(fs, ft, tuple(src.shape[-2:]), tuple(tgt.shape[-2:]), rf_jump)
        kps = x.geo.q_eval_to_input(x.q_e).float()
        pred = x.geo.r_input_to_eval(transfer_keypoints_hpf(kps, sbox, tbox, conf[0].argmax(1)).double())
        err = (pred - x.gt).norm(dim=-1)
        total += float((err <= alpha * x.thresh[kind]).double().mean()) if len(err) else 0.0
    return total / max(len(pairs), 1)


def published_beam_search(score_fn, candidates, beam: int = 4, max_depth: int = 8, log=print):
    """HPF's ``beamsearch_hp`` on ``score_fn(ids tuple) -> score``. Returns (best ids, best score, history
    [(depth, [(ids, score), ...])]). Stops early only when a depth has no extension left (the published code
    would fail there)."""
    def topk(buf, k):
        return sorted(buf, key=lambda e: e[1], reverse=True)[:k]     # stable, as list.sort(reverse=True)

    buf = [((i,), score_fn((i,))) for i in range(beam)]
    beam_sets = topk(buf, beam)
    best_ids, best = topk(buf, 1)[0]
    history = [(0, buf)]
    log("depth 0: best %s %.4f" % (best_ids, best))
    for depth in range(1, max_depth):
        buf = []
        for test, _ in beam_sets:
            for c in candidates:
                if c not in test and c > min(test):
                    ids = tuple(sorted(test + (c,)))
                    if ids in [e[0] for e in buf]:
                        break                                 # published: ends this beam entry's extensions
                    buf.append((ids, score_fn(ids)))
        if not buf:
            break
        history.append((depth, buf))
        beam_sets = topk(buf, beam)
        top_ids, top = topk(buf, 1)[0]
        if top > best:
            best_ids, best = top_ids, top
        log("depth %d: best %s %.4f (%d sets); overall %s %.4f" % (depth, top_ids, top, len(buf), best_ids, best))
    return best_ids, best, history


def _check_inputs(args, n_ids):
    """Every input checked before the dataset is read and the model built; returns the candidate ids."""
    from semcorr.cli import CommandError
    from semcorr.commands._checks import check_output, check_size

    for opt, value, low in (("--beam", args.beam, 1), ("--max-depth", args.max_depth, 1),
                            ("--max-layers", args.max_layers, 1), ("--pairs", args.pairs, 1)):
        if value < low:
            raise CommandError("%s %d: give at least %d" % (opt, value, low))
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit %d: give at least 1 pair" % args.limit)
    if args.size == 0:
        raise CommandError("--size 0: the greedy search's synthetic pairs need a size (at least 16 pixels)")
    check_size(args.size, "--size")
    try:
        candidates = _parse_candidates(args.candidates, n_ids)
    except ValueError as e:
        raise CommandError("--candidates %s: %s" % (args.candidates, e))
    if args.search == "published" and (args.beam > len(candidates)
                                       or any(i not in candidates for i in range(args.beam))):
        raise CommandError("--candidates: the published search starts from ids 0..beam-1 (%d); include them"
                           % (args.beam - 1))
    if args.save is not None:
        args.save = check_output(args.save, "--save", [".json"])
    return candidates


def _save(path, args, ids, score, history, metric):
    """``--save``: the result and every scored set, as JSON."""
    import json

    with open(path, "w") as f:
        json.dump({"search": args.search, "backbone": args.backbone, "dataset": args.dataset, "split": args.split,
                   "alpha": args.alpha, "metric": metric, "best_ids": list(ids), "best_score": score,
                   "history": [{"depth": d, "scored": [{"ids": list(i), "score": v} for i, v in buf]}
                               for d, buf in history]}, f, indent=1)
    print("saved:      %s" % path)


def run(args) -> int:
    from semcorr.models.hpf import HyperpixelFlow, hyperpixel_geometry

    weights = None if str(args.weights).lower() == "none" else args.weights
    t0 = time.perf_counter()
    n_ids = len(hyperpixel_geometry(int(args.backbone[len("resnet"):])))
    candidates = _check_inputs(args, n_ids)
    if args.search == "published":  # the dataset (name, root, split, boxes) before the model
        pairs, kind = protocol_pairs(args.dataset, args.root, args.split, args.thresh, args.limit)
    # the benchmark decides the margin pruning, as beamsearch.py's HyperpixelFlow(backbone, '0', benchmark)
    benchmark = args.dataset if args.dataset in ("pfpascal", "pfwillow", "spair") else "pfpascal"
    model = HyperpixelFlow(backbone=args.backbone, hyperpixel_ids=tuple(candidates), weights=weights,
                           benchmark=benchmark)
    from semcorr.models import untrained_line

    line = untrained_line(model)
    if line:
        print(line)
    if args.search == "greedy":
        pairs = _validation_pairs(args.pairs, args.size, args.seed)
        print("hpf-search (greedy, ours): %s, %d candidate ids, %d synthetic pairs at %dpx, beam %d"
              % (args.backbone, len(candidates), len(pairs), args.size, args.beam))
        ids, pck, history = beam_search(model, pairs, candidates, args.beam, args.max_layers, args.alpha)
        print("best ids:   %s" % (",".join(map(str, ids)),))
        print("PCK@%.2f:   %.4f (alpha_img, pooled keypoints)" % (args.alpha, pck))
        metric = "PCK@%g alpha_img, pooled keypoints (fraction)" % args.alpha
    else:
        cache = [(model.layer_features(x.q_in[None], candidates), model.layer_features(x.r_in[None], candidates))
                 for x in pairs]
        print("hpf-search (published): %s, %d candidate ids, %d %s pairs (%s), beam %d, depth %d, PCK@%g %s"
              % (args.backbone, len(candidates), len(pairs), args.dataset, args.split, args.beam, args.max_depth,
                 args.alpha, kind))
        ids, pck, history = published_beam_search(lambda s: score_ids(model, cache, pairs, s, args.alpha, kind),
                                                  candidates, args.beam, args.max_depth)
        print("best ids:   %s" % (",".join(map(str, ids)),))
        print("PCK@%g:    %.2f %% (%s, mean over pairs)" % (args.alpha, 100 * pck, kind))
        metric = "PCK@%g %s, mean over pairs of per-pair PCK (fraction)" % (args.alpha, kind)
    print("use:        semcorr eval --method hpf --model-arg backbone=%s --model-arg \"hyperpixel_ids=%s\""
          % (args.backbone, list(ids)))
    if args.save is not None:
        _save(args.save, args, ids, pck, history, metric)
    print("time:       %.1f s" % (time.perf_counter() - t0))
    return 0
