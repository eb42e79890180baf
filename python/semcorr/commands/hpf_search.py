"""``semcorr hpf-search``: HPF's beam search for hyperpixel layer ids on a small validation set.

HPF (Min et al., ICCV 2019) selects its layers offline: a breadth-first search keeping the k best layer sets
(beam), each step adding one more layer id to every set in the beam, scored by PCK on a few validation pairs,
stopping when no set of the new size beats the best so far (or at ``--max-layers``). The validation set
defaults to offline synthetic pairs (:class:`semcorr.data.synthetic.SyntheticPairs`, exact ground truth).
Backbone features of every candidate layer are computed once per image and reused for all layer sets.
"""
import time

import torch

__all__ = ["add_parser", "run", "beam_search"]


def add_parser(subparsers):
    p = subparsers.add_parser(
        "hpf-search", help="beam search for HPF hyperpixel layer ids on a small validation set",
        description="Search the ResNet layer ids of Hyperpixel Flow by beam search (PCK objective) on a few "
                    "validation pairs (default: offline synthetic pairs).")
    p.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101"])
    p.add_argument("--weights", default="auto",
                   help="auto (ImageNet if cached, else random), imagenet, none, or a state-dict path")
    p.add_argument("--pairs", type=int, default=4, help="number of validation pairs (default 4)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--beam", type=int, default=2, help="beam width k (default 2)")
    p.add_argument("--max-layers", type=int, default=3, help="largest layer set (default 3)")
    p.add_argument("--candidates", default=None, help="candidate ids, e.g. '0-16' or '2,7,11' (default: all)")
    p.add_argument("--alpha", type=float, default=0.1, help="PCK threshold alpha_img (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
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
        pairs.append((t(raw.src_img), t(raw.trg_img), torch.as_tensor(raw.src_kps).float(),
                      torch.as_tensor(raw.trg_kps).float()))
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
    """Returns (best ids, best PCK, history [(size, [(ids, pck), ...])])."""
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


def run(args) -> int:
    from semcorr.models.hpf import HyperpixelFlow, hyperpixel_geometry

    weights = None if str(args.weights).lower() == "none" else args.weights
    t0 = time.perf_counter()
    n_ids = len(hyperpixel_geometry(int(args.backbone[len("resnet"):])))
    candidates = _parse_candidates(args.candidates, n_ids)
    model = HyperpixelFlow(backbone=args.backbone, hyperpixel_ids=tuple(candidates), weights=weights)
    pairs = _validation_pairs(args.pairs, args.size, args.seed)
    print("hpf-search: %s, %d candidate ids, %d validation pairs at %dpx, beam %d"
          % (args.backbone, len(candidates), len(pairs), args.size, args.beam))
    ids, pck, _ = beam_search(model, pairs, candidates, args.beam, args.max_layers, args.alpha)
    print("best ids:   %s" % (",".join(map(str, ids)),))
    print("PCK@%.2f:   %.4f (alpha_img)" % (args.alpha, pck))
    print("time:       %.1f s" % (time.perf_counter() - t0))
    return 0
