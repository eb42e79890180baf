"""Training of PMNC's scoring function with its proxy model (``semcorr train pmnc``).

The proxy applies the scoring network densely to the whole correlation volume ("same" padding, which equals the
window scores PMNC computes at inference, see :class:`semcorr.models.pmnc.PMNCScorer`). For each source cell
with a known ground-truth target, the scores over target cells go through a softmax (scaled by the scorer's
learnt ``logit_scale``) and are compared with the ground-truth probability map — the exact target position
spread bilinearly over its 4 nearest target cells — by cross entropy ("dense scoring and cross-entropy loss").

Offline data: random affine+TPS warps of the scikit-image photos (:func:`semcorr.data.sample.sample_pair`), whose
exact warps give the ground truth of every source cell.
"""
import argparse
import time
from typing import List, Tuple

import numpy as np
import torch

__all__ = ["add_arguments", "run", "gt_probability_map", "dense_ce_loss", "make_batch", "train_steps", "save_scorer"]


def gt_probability_map(warp, src_size, tgt_size, src_grid, tgt_grid) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ground truth of one pair: ``(prob (Hs, Ws, Ht, Wt), mask (Hs, Ws) bool)``.

    Source cell (i, j) is centred at pixel ``((j + 0.5) W / Ws - 0.5, (i + 0.5) H / Hs - 0.5)``; ``warp.forward``
    maps it to the target image; the target position in grid units is spread bilinearly over the 4 nearest
    target cells. Cells whose target falls outside the target grid's cell centres are masked out.
    """
    (H, W), (Ht_img, Wt_img) = src_size, tgt_size
    (Hs, Ws), (Ht, Wt) = src_grid, tgt_grid
    ys = (np.arange(Hs) + 0.5) * H / Hs - 0.5
    xs = (np.arange(Ws) + 0.5) * W / Ws - 0.5
    xx, yy = np.meshgrid(xs, ys, indexing="xy")
    tgt = warp.forward(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(Hs, Ws, 2)
    gx = (tgt[..., 0] + 0.5) * Wt / Wt_img - 0.5
    gy = (tgt[..., 1] + 0.5) * Ht / Ht_img - 0.5
    mask = (gx >= 0) & (gx <= Wt - 1) & (gy >= 0) & (gy <= Ht - 1)
    prob = torch.zeros(Hs, Ws, Ht, Wt, dtype=torch.float32)
    x0 = np.clip(np.floor(gx), 0, max(0, Wt - 2)).astype(np.int64)
    y0 = np.clip(np.floor(gy), 0, max(0, Ht - 2)).astype(np.int64)
    fx, fy = np.clip(gx - x0, 0, 1), np.clip(gy - y0, 0, 1)
    for i, j in zip(*np.nonzero(mask)):
        for dy, wy in ((0, 1 - fy[i, j]), (1, fy[i, j])):
            for dx, wx in ((0, 1 - fx[i, j]), (1, fx[i, j])):
                yi, xi = min(Ht - 1, y0[i, j] + dy), min(Wt - 1, x0[i, j] + dx)
                prob[i, j, yi, xi] += float(wy * wx)
    return prob, torch.from_numpy(mask)


def dense_ce_loss(scores: torch.Tensor, prob: torch.Tensor, mask: torch.Tensor, logit_scale: torch.Tensor):
    """Cross entropy between softmax over target cells of ``exp(logit_scale) * scores`` and ``prob``, averaged over
    the masked source cells. scores, prob (B, Hs, Ws, Ht, Wt); mask (B, Hs, Ws)."""
    B, Hs, Ws, Ht, Wt = scores.shape
    logp = torch.log_softmax(logit_scale.exp() * scores.reshape(B, Hs, Ws, Ht * Wt), -1)
    ce = -(prob.reshape(B, Hs, Ws, Ht * Wt) * logp).sum(-1)
    m = mask.to(ce.dtype)
    return (ce * m).sum() / m.sum().clamp_min(1)


def make_batch(model, seeds: List[int], size: int, images=("astronaut", "chelsea", "coffee", "rocket")):
    """Pre-filtered correlation volumes and ground truth of synthetic pairs: (corr, prob, mask)."""
    from semcorr.data.sample import sample_pair

    corrs, probs, masks = [], [], []
    for s in seeds:
        pair = sample_pair(seed=s, size=size, image=images[s % len(images)])
        src, tgt = pair.tensors(model.device)
        with torch.no_grad():
            corr = model.correlation(model.features(src), model.features(tgt))
        _, Hs, Ws, Ht, Wt = corr.shape
        prob, mask = gt_probability_map(pair.warp, pair.size, pair.size, (Hs, Ws), (Ht, Wt))
        corrs.append(corr)
        probs.append(prob[None].to(corr.device))
        masks.append(mask[None].to(corr.device))
    return torch.cat(corrs), torch.cat(probs), torch.cat(masks)


def train_steps(model, batches, steps: int, lr: float = 1e-3, log=None) -> List[float]:
    """Adam on the scorer's parameters over ``batches`` (cycled); returns the loss of every step."""
    opt = torch.optim.Adam(model.scorer.parameters(), lr=lr)
    losses = []
    model.scorer.train()
    for step in range(steps):
        corr, prob, mask = batches[step % len(batches)]
        loss = dense_ce_loss(model.scorer.dense(corr), prob, mask, model.scorer.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, float(loss))
    model.scorer.eval()
    return losses


def save_scorer(model, path: str, backbone: str) -> None:
    """The checkpoint ``semcorr train pmnc`` writes: ``{"state_dict": {"scorer.<name>": tensor}, "backbone": name}``
    (the scorer only; the backbone is fixed and not saved). ``PMNC(backbone=name, checkpoint=path)`` loads it."""
    torch.save({"state_dict": {"scorer." + k: v.detach().clone() for k, v in model.scorer.state_dict().items()},
                "backbone": str(backbone)}, path)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="daisy",
                   help="daisy (default here: offline, no weights), hog, resnet101 (the paper's), resnet50; load the "
                        "result with the same backbone")
    g.add_argument("--stride", type=int, default=8, help="grid step of daisy/hog in pixels (default 8)")
    g.add_argument("--init", choices=("consensus", "random"), default="consensus",
                   help="initial scoring weights (default consensus)")
    g = p.add_argument_group("data")
    g.add_argument("--image-size", type=int, default=160, help="square working resolution (default 160)")
    g.add_argument("--pairs", type=int, default=16, help="distinct synthetic pairs, cycled (default 16)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=200, help="number of steps (default 200)")
    g.add_argument("--batch-size", type=int, default=2, help="pairs per batch (default 2)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    g.add_argument("--out", default="pmnc_scorer.pt", help="checkpoint to write (default pmnc_scorer.pt)")
    return p


def run(args) -> int:
    from semcorr.models import build_model

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    # --image-size is the working resolution: the model must not resize again (its default for ResNets is 800)
    kw = dict(backbone=args.backbone, init=args.init, image_size=None)
    if args.backbone in ("daisy", "hog"):
        kw["stride"] = args.stride
    model = build_model("pmnc", **kw).to(torch.device(args.device))
    t0 = time.perf_counter()
    nb = max(1, args.pairs // args.batch_size)
    batches = [make_batch(model, list(range(args.seed * 1000 + b * args.batch_size,
                                            args.seed * 1000 + (b + 1) * args.batch_size)), args.image_size)
               for b in range(nb)]
    print("pmnc train: %d batches of %d pairs, grid %s, prepared in %.1fs"
          % (nb, args.batch_size, tuple(batches[0][0].shape[1:]), time.perf_counter() - t0))

    def log(step, loss):
        if step % max(1, args.steps // 20) == 0 or step == args.steps - 1:
            print("step %5d  loss %.4f" % (step, loss))

    losses = train_steps(model, batches, args.steps, args.lr, log)
    save_scorer(model, args.out, args.backbone)
    print("pmnc train: loss %.4f -> %.4f; wrote %s (load with build_model('pmnc', backbone=%r, checkpoint=...))"
          % (losses[0], losses[-1], args.out, args.backbone))
    return 0
