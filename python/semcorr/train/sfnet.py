"""Train SFNet's adaptation layers with mask supervision on synthetic affine pairs (Lee et al., CVPR 2019).

    semcorr train sfnet --steps 50 --batch-size 2 --image-size 160 --out runs/sfnet      # CPU smoke run (tiny CNN)
    semcorr train sfnet --backbone resnet101 --device cuda --out runs/sfnet_r101          # the paper's setting
    semcorr train sfnet ... --resume auto                                                  # continue from OUT/last.pt
    semcorr match --method sfnet ...   (build_model("sfnet", backbone=..., checkpoint="runs/sfnet/last.pt"))

Data (:class:`SyntheticMaskPairs`, offline): a foreground shape (random ellipse or polygon) textured with one
scikit-image photo pasted on another photo gives an image and its binary mask; the pair's target is a random
affine warp of both (:func:`semcorr.data.warps.random_affine`), with a random horizontal flip of the whole pair
and independent colour jitter (brightness, contrast, saturation) of each image. SFNet trains the same way on
PASCAL VOC images with their foreground masks; those are not shipped here.

Defaults follow the paper: Adam, learning rate 3e-5 divided by 5 after 30 of 40 epochs (7k iterations at batch
16: ``--steps 7000 --decay-at 5250 --gamma 0.2``), beta = 50, sigma = 5, loss weights 3 / 16 / 0.5, 320x320 inputs
(20x20 grids). Only the adaptation layers are trained; the backbone stays frozen (in eval mode). Checkpoints:
``OUT/last.pt`` (every ``--save-every`` steps and at the end) with the configuration, adaptation-layer weights,
optimiser and scheduler state, step and loss history; ``--resume`` restores all of them.
"""
import argparse
import os
import sys
import time
from typing import Dict, Optional

import numpy as np
import torch

__all__ = ["add_arguments", "run", "SyntheticMaskPairs", "train_step", "build_from_args"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from semcorr.losses.sfnet import DEFAULT_WEIGHTS

    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="tiny",
                   help="tiny (random small CNN, offline, default), resnet101 (the paper; ImageNet weights from the "
                        "torch hub cache), resnet50, resnet18")
    g.add_argument("--weights", default="auto", help="backbone weights: auto, imagenet, none or a state-dict path")
    g.add_argument("--image-size", type=int, default=320, help="square input size (paper 320 -> 20x20 grids)")
    g.add_argument("--beta", type=float, default=50.0, help="kernel soft-argmax inverse temperature (default 50)")
    g.add_argument("--sigma", type=float, default=5.0, help="Gaussian std in grid cells; <= 0: plain soft-argmax")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=7000, help="iterations (paper: ~7k = 40 epochs at batch 16)")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--lr", type=float, default=3e-5, help="Adam learning rate (default 3e-5)")
    g.add_argument("--decay-at", type=int, default=None,
                   help="divide the learning rate by 1/gamma at this step (default 3/4 of --steps: epoch 30 of 40)")
    g.add_argument("--gamma", type=float, default=0.2, help="learning-rate decay factor (default 0.2)")
    for k, v in DEFAULT_WEIGHTS.items():
        g.add_argument("--w-%s" % k, type=float, default=v, help="weight of the %s loss (default %g)" % (k, v))
    g = p.add_argument_group("data")
    g.add_argument("--pairs", type=int, default=2800,
                   help="synthetic training pairs per epoch (default 2800, the paper's VOC subset size)")
    g.add_argument("--overfit", action="store_true", help="reuse the first batch every step (debugging)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default="runs/sfnet", help="checkpoint folder (default runs/sfnet)")
    g.add_argument("--save-every", type=int, default=500)
    g.add_argument("--resume", default=None, help="checkpoint path, or 'auto' for OUT/last.pt if present")
    g.add_argument("--log-every", type=int, default=50)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


# --------------------------------------------------------------------------------------------------------
# data


def _shape_mask(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    from skimage.draw import ellipse, polygon

    m = np.zeros((H, W), dtype=np.float32)
    cy, cx = rng.uniform(0.35, 0.65) * H, rng.uniform(0.35, 0.65) * W
    if rng.random() < 0.5:
        ry, rx = rng.uniform(0.15, 0.35) * H, rng.uniform(0.15, 0.35) * W
        rr, cc = ellipse(cy, cx, ry, rx, shape=(H, W), rotation=rng.uniform(-np.pi, np.pi))
    else:
        k = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.15, 0.38, k)
        rr, cc = polygon(cy + rad * H * np.sin(ang), cx + rad * W * np.cos(ang), shape=(H, W))
    m[rr, cc] = 1.0
    return m


def _jitter(img: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    b, c, s = (rng.uniform(1 - strength, 1 + strength) for _ in range(3))
    gray = img.mean(-1, keepdims=True)
    img = gray + (img - gray) * s            # saturation
    img = img.mean() + (img - img.mean()) * c  # contrast
    return np.clip(img * b, 0, 1).astype(np.float32)  # brightness


class SyntheticMaskPairs:
    """Deterministic synthetic SFNet training pairs: ``pairs[i]`` -> dict of float32 tensors ``src``, ``tgt``
    (3, S, S) in [0, 1] and ``src_mask``, ``tgt_mask`` (1, S, S) in {0, 1}."""

    def __init__(self, size: int = 320, seed: int = 0, n: int = 2800):
        from semcorr.data.synthetic import OFFLINE_IMAGES, load_offline_image

        self.size, self.seed, self.n = int(size), int(seed), int(n)
        self.photos = [load_offline_image(name, self.size) for name in OFFLINE_IMAGES]

    def __len__(self):
        return self.n

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        from semcorr.data.warps import random_affine, warp_image

        S = self.size
        rng = np.random.default_rng([self.seed, int(i)])
        bg_i, fg_i = rng.choice(len(self.photos), size=2, replace=False)
        bg, fg = self.photos[bg_i], self.photos[fg_i]
        if rng.random() < 0.5:
            fg = fg[:, ::-1]
        mask = _shape_mask(rng, S, S)
        img = bg * (1 - mask[..., None]) + fg * mask[..., None]
        if rng.random() < 0.5:  # horizontal flip of the whole pair
            img, mask = img[:, ::-1], mask[:, ::-1]
        w = random_affine((S, S), seed=int(rng.integers(2**31)))
        tgt = warp_image(np.ascontiguousarray(img), w).astype(np.float32)
        tgt_mask = warp_image(np.ascontiguousarray(mask), w, order=0).astype(np.float32)
        src, tgt = _jitter(np.ascontiguousarray(img), rng), _jitter(tgt, rng)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()  # noqa: E731
        return {"src": t(src), "tgt": t(tgt), "src_mask": torch.from_numpy(np.ascontiguousarray(mask))[None].float(),
                "tgt_mask": torch.from_numpy(tgt_mask)[None].float()}

    def batch(self, indices) -> Dict[str, torch.Tensor]:
        items = [self[int(i)] for i in indices]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# --------------------------------------------------------------------------------------------------------
# training


def build_from_args(args):
    from semcorr.losses.sfnet import SFNetLoss
    from semcorr.models.sfnet import SFNet

    model = SFNet(**model_config(args))
    loss = SFNetLoss(mask=args.w_mask, flow=args.w_flow, smooth=args.w_smooth)
    return model, loss


def model_config(args) -> Dict:
    """The ``build_model("sfnet", ...)`` keyword arguments of a run (saved in its checkpoints)."""
    return {"backbone": args.backbone, "weights": None if str(args.weights).lower() == "none" else args.weights,
            "beta": args.beta, "sigma": args.sigma if args.sigma > 0 else None, "image_size": args.image_size}


def train_step(model, loss_fn, batch, optimizer) -> Dict[str, float]:
    """One Adam step on a batch dict (``src``, ``tgt``, ``src_mask``, ``tgt_mask``); returns the loss terms."""
    from semcorr.losses.sfnet import resize_mask

    model.train()
    out = model.flows(batch["src"], batch["tgt"])
    ms = resize_mask(batch["src_mask"], out["grid_S2T"].shape[1:3])
    mt = resize_mask(batch["tgt_mask"], out["grid_T2S"].shape[1:3])
    terms = loss_fn(out["grid_S2T"], out["grid_T2S"], ms, mt)
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def _config(args):
    keys = ("backbone", "weights", "image_size", "beta", "sigma", "lr", "gamma", "steps", "batch_size", "w_mask",
            "w_flow", "w_smooth", "seed")
    return {k: getattr(args, k) for k in keys}


def run(args) -> int:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model, loss_fn = build_from_args(args)
    model.to(device)
    params = model.trainable_parameters()
    optimizer = torch.optim.Adam(params, lr=args.lr)
    decay_at = args.decay_at if args.decay_at is not None else max(1, (3 * args.steps) // 4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[decay_at], gamma=args.gamma)
    data = SyntheticMaskPairs(size=args.image_size, seed=args.seed, n=args.pairs)
    os.makedirs(args.out, exist_ok=True)
    last = os.path.join(args.out, "last.pt")
    step, history = 0, []
    resume = last if args.resume == "auto" and os.path.isfile(last) else (None if args.resume == "auto" else args.resume)
    if resume:
        ck = torch.load(resume, map_location="cpu", weights_only=False)
        if "state_dict" in ck:  # the whole model (a random backbone included), as saved below
            model.load_state_dict(ck["state_dict"])
        model.load_checkpoint(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        step, history = int(ck["step"]), list(ck.get("history", []))
        print("resumed from %s at step %d" % (resume, step))

    from semcorr.models.trained import training_state

    def save():
        sd = {k: v for k, v in model.state_dict().items() if k.startswith(("adapt3.", "adapt4."))}
        # method / model_config / state_dict (the whole model, a random backbone included): build_model("sfnet",
        # checkpoint=last) rebuilds this model exactly (semcorr.models.trained); "model" is kept for --resume
        ck = training_state(model, "sfnet", model_config(args), trained=("adaptation layers",))
        torch.save({**ck, "config": _config(args), "model": sd, "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "history": history}, last + ".tmp")
        os.replace(last + ".tmp", last)

    rng = np.random.default_rng([args.seed, 1])
    order = rng.permutation(len(data))
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, desc="sfnet", dynamic_ncols=True, file=sys.stderr)
    first = None
    t0 = time.time()
    while step < args.steps:
        if args.overfit and first is not None:
            batch = first
        else:
            start = (step * args.batch_size) % len(data)
            idx = [order[(start + j) % len(data)] for j in range(args.batch_size)]
            batch = data.batch(idx)
            first = first or batch
        batch = {k: v.to(device) for k, v in batch.items()}
        terms = train_step(model, loss_fn, batch, optimizer)
        scheduler.step()
        step += 1
        history.append(terms["total"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss="%.4f" % terms["total"], mask="%.3f" % terms["mask"], flow="%.3f" % terms["flow"])
        if args.log_every and step % args.log_every == 0:
            line = ("step %d  loss %.5f  mask %.5f  flow %.5f  smooth %.5f  lr %.2e  (%.1fs)"
                    % (step, terms["total"], terms["mask"], terms["flow"], terms["smooth"],
                       optimizer.param_groups[0]["lr"], time.time() - t0))
            if bar is not None:
                bar.write(line, file=sys.stderr)  # above the bar, not over it
            else:
                print(line)
        if args.save_every and step % args.save_every == 0:
            save()
    if bar is not None:
        bar.close()
    save()
    print("saved %s (step %d, last loss %.5f)" % (last, step, history[-1] if history else float("nan")))
    return 0
