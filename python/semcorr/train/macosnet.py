"""Train MaCoSNet (joint semantic matching + co-segmentation) with weak supervision: same-category image pairs.

    semcorr train macosnet --model weakalign_resnet101_affine_tps.pth.tar --dataset pfpascal --root DATA/PF-PASCAL
    semcorr train macosnet --backbone tiny --lr 1e-4 --steps 200 --out runs/macosnet   # offline, CPU, tiny encoder
    semcorr train macosnet ... --resume auto                                         # continue from OUT/last.pt
    semcorr match --method macosnet ...   (build_model("macosnet", checkpoint="runs/macosnet/last.pt"))

Data: only images and their category are used (no keypoints, no masks). Without ``--root`` the pairs come from
scikit-image photos under random affine+TPS warps (``--data sample``: two random warps of one photo form a pair,
the photo is the category; ``--data synthetic``: the pairs of :class:`semcorr.data.synthetic.SyntheticPairs`).
Batches hold pairs in groups of two per category so that the transitivity loss has triplets: for pair i the
third image is image A of another pair of the batch with the same category (pairs without one skip that term).

Defaults are the released ``train.sh``'s: ResNet-101 (layer3) at 240 px, initialised from a WeakAlign checkpoint
(``--model``; without it the regressors start at the identity and the model says it is untrained), Adam with
lr 5e-8, batch 4, the whole network fine-tuned with BatchNorm in eval mode (``--bn``), loss
:class:`semcorr.losses.macosnet.MaCoSNetLoss` with matching + cycle at weight 1 and the
transitivity, contrastive and task terms off (``--w-trans`` etc. turn them on; margin 2). The perceptual network
F (only with ``--w-contrast`` > 0) is ImageNet ResNet-50 (from the torch hub cache) except with
``--backbone tiny``, where a fixed random small CNN stands in for it by default (``--perceptual``).
Checkpoints: ``OUT/last.pt`` (every ``--save-every`` steps and at the end) with the model configuration, weights,
optimiser state, step and loss history; ``--resume`` restores all of them.
"""
import argparse
import os
import sys
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["add_arguments", "run", "PairBatcher", "train_step", "build_from_args"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from semcorr.losses.macosnet import DEFAULT_MARGIN, DEFAULT_WEIGHTS

    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="resnet101",
                   help="resnet101 (default, the released model; ImageNet weights from the torch hub cache when there, "
                        "else random), resnet50, or tiny (ours: random small CNN, offline tests and demos)")
    g.add_argument("--model", default=None,
                   help="initial weights: a WeakAlign / CNNGeometric two-stage .pth.tar or a MaCoSNet checkpoint "
                        "(the released train.sh starts from weakalign.pth.tar)")
    g.add_argument("--image-size", type=int, default=240, help="square working resolution (default 240)")
    g.add_argument("--no-cascade", action="store_true", help="affine stage only (no TPS)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=None, help="dataset name with --root (pfpascal, pfwillow, spair, tss, ...)")
    g.add_argument("--root", default=None, help="dataset folder; without it, offline pairs (--data)")
    g.add_argument("--split", default="trn", help="dataset split with --root (default trn)")
    g.add_argument("--data", choices=("sample", "synthetic"), default="sample",
                   help="offline pairs without --root: random warps of scikit-image photos (default sample)")
    g.add_argument("--overfit", action="store_true", help="reuse the first batch every step (debugging)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=1000, help="total number of steps (default 1000)")
    g.add_argument("--batch-size", type=int, default=4, help="pairs per batch (default 4)")
    g.add_argument("--lr", type=float, default=5e-8, help="Adam learning rate (default 5e-8, the released train.sh)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--bn", choices=("eval", "train"), default="eval",
                   help="BatchNorm statistics while training: eval (default, the released train.py runs the epoch in "
                        "eval mode) or train (batch statistics)")
    g.add_argument("--freeze-backbone", action="store_true",
                   help="keep the encoder fixed (the released script fine-tunes it)")
    for k, v in DEFAULT_WEIGHTS.items():
        g.add_argument("--w-%s" % k, type=float, default=v, help="weight of the %s loss (default %g)" % (k, v))
    g.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="margin m of the perceptual contrastive loss (default %g)" % DEFAULT_MARGIN)
    g.add_argument("--perceptual", choices=("auto", "resnet50", "tiny"), default="auto",
                   help="perceptual network F: auto = tiny with --backbone tiny, else resnet50")
    g = p.add_argument_group("run")
    g.add_argument("--out", default="runs/macosnet", help="checkpoint folder (default runs/macosnet)")
    g.add_argument("--save-every", type=int, default=100, help="checkpoint every N steps (default 100)")
    g.add_argument("--resume", default=None, help="checkpoint to resume from, or 'auto' for OUT/last.pt if present")
    g.add_argument("--log-every", type=int, default=10, help="print the loss terms every N steps (default 10)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads (default: torch's)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


# --------------------------------------------------------------------------------------------------------
# data


def _resize(img: torch.Tensor, size: int) -> torch.Tensor:
    if img.dim() == 3:
        img = img[None]
    if tuple(img.shape[-2:]) != (size, size):
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return img[0].clamp(0, 1)


def _hwc_to_chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()


class PairBatcher:
    """Batches of same-category pairs ``(img_a, img_b, img_c, has_c, categories)`` (images (B, 3, S, S)).

    ``source``: ``"sample"`` (infinite: two random warps of a scikit-image photo), or a pair dataset whose
    items have ``src_img``, ``trg_img`` and ``category`` (only those are used). Items are drawn in groups of two
    of the same category; ``img_c[i]`` is image A of another item of the batch with the same category
    (``has_c[i]`` False when there is none).
    """

    def __init__(self, source, batch_size: int, image_size: int, seed: int = 0):
        self.source = source
        self.batch_size = int(batch_size)
        self.image_size = int(image_size)
        self.rng = np.random.default_rng(seed)
        self._by_cat = None
        if source != "sample":
            cats = {}
            for i in range(len(source)):
                cats.setdefault(self._category(i), []).append(i)
            self._by_cat = cats

    def _category(self, i: int) -> str:
        src = self.source
        items = getattr(src, "items", None)
        if items is not None and getattr(src, "name", "") == "synthetic":
            return str(items[i][0])  # (image, warp, repeat): no need to render
        return str(src[i]["category"])

    def _sample_item(self, cat: str):
        from semcorr.data.sample import sample_pair

        s = self.image_size
        a = sample_pair(seed=int(self.rng.integers(2**31)), size=s, image=cat).tgt_img
        b = sample_pair(seed=int(self.rng.integers(2**31)), size=s, image=cat).tgt_img
        return _hwc_to_chw(a), _hwc_to_chw(b)

    def _dataset_item(self, i: int):
        it = self.source[i]
        return _resize(it["src_img"].float(), self.image_size), _resize(it["trg_img"].float(), self.image_size)

    def next(self):
        from semcorr.data.sample import SAMPLE_IMAGES

        cats: List[str] = []
        pairs = []
        while len(pairs) < self.batch_size:
            if self._by_cat is None:
                cat = SAMPLE_IMAGES[int(self.rng.integers(len(SAMPLE_IMAGES)))]
                for _ in range(min(2, self.batch_size - len(pairs))):
                    pairs.append(self._sample_item(cat))
                    cats.append(cat)
            else:
                names = sorted(self._by_cat)
                cat = names[int(self.rng.integers(len(names)))]
                idx = self._by_cat[cat]
                for j in self.rng.permutation(len(idx))[: min(2, self.batch_size - len(pairs))]:
                    pairs.append(self._dataset_item(idx[int(j)]))
                    cats.append(cat)
        img_a = torch.stack([p[0] for p in pairs])
        img_b = torch.stack([p[1] for p in pairs])
        img_c = torch.zeros_like(img_a)
        has_c = torch.zeros(len(pairs), dtype=torch.bool)
        for i, c in enumerate(cats):
            others = [j for j, c2 in enumerate(cats) if c2 == c and j != i]
            if others:
                img_c[i] = img_a[others[int(self.rng.integers(len(others)))]]
                has_c[i] = True
        return img_a, img_b, img_c, has_c, cats


def _source(args):
    if args.root is not None:
        from semcorr.data.datasets import build_dataset

        if not args.dataset:
            raise SystemExit("semcorr train macosnet: --root needs --dataset NAME")
        return build_dataset(args.dataset, args.root, split=args.split, size=args.image_size)
    if args.dataset not in (None, "synthetic") and args.dataset != args.data:
        raise SystemExit("semcorr train macosnet: --dataset %s needs --root" % args.dataset)
    if args.data == "synthetic" or args.dataset == "synthetic":
        from semcorr.data.synthetic import SyntheticPairs

        return SyntheticPairs(size=args.image_size, stereo=False, repeats=4, seed=args.seed)
    return "sample"


# --------------------------------------------------------------------------------------------------------
# training


def build_from_args(args, device):
    from semcorr.losses.macosnet import DEFAULT_WEIGHTS, MaCoSNetLoss, PerceptualFeatures
    from semcorr.models.macosnet import MaCoSNet

    model = MaCoSNet(backbone=args.backbone, image_size=args.image_size, cascade=not args.no_cascade,
                     freeze_backbone=args.freeze_backbone, checkpoint=args.model)
    kind = args.perceptual
    if kind == "auto":
        kind = "tiny" if args.backbone == "tiny" else "resnet50"
    weights = {k: getattr(args, "w_%s" % k) for k in DEFAULT_WEIGHTS}
    perceptual = PerceptualFeatures(kind) if weights["contrast"] else None
    loss_fn = MaCoSNetLoss(perceptual, weights=weights, margin=args.margin)
    return model.to(device), loss_fn.to(device)


def train_step(model, loss_fn, optimizer, batch, device, bn: str = "eval"):
    """One optimisation step on a batch from :class:`PairBatcher`: returns (total loss, loss terms).

    ``bn="eval"`` (default) is the released loop: ``train.py`` calls ``model.eval()`` before ``process_epoch``, so
    every BatchNorm layer normalises with its running statistics (those of the WeakAlign initialisation) while
    its affine parameters train; ``bn="train"`` uses batch statistics."""
    img_a, img_b, img_c, has_c = (t.to(device) for t in batch[:4])
    model.train(bn == "train")
    out = model.training_outputs(img_a, img_b, img_c, has_c)
    total, parts = loss_fn(out)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return float(total.detach()), parts


def _save(path: str, model, optimizer, step: int, history, args) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "config": model.config, "optimizer": optimizer.state_dict(),
                "step": int(step), "history": list(history),
                "args": {k: v for k, v in vars(args).items() if not callable(v)}}, tmp)
    os.replace(tmp, path)


def run(args) -> int:
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        model, loss_fn = build_from_args(args, device)
    except (FileNotFoundError, ValueError) as e:  # missing weights file, bad option or checkpoint
        print("semcorr train macosnet: error: %s" % (e.args[0] if e.args else e), file=sys.stderr)
        return 1
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    last = os.path.join(args.out, "last.pt")
    step, history = 0, []
    resume: Optional[str] = args.resume
    if resume == "auto":
        resume = last if os.path.isfile(last) else None
    if resume:
        from semcorr.checkpoints import load_checkpoint

        ckpt = load_checkpoint(resume, map_location=device)
        if ckpt["config"] != model.config:
            print("semcorr train macosnet: error: %s was trained with %s, not %s"
                  % (resume, ckpt["config"], model.config), file=sys.stderr)
            return 1
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, history = int(ckpt["step"]), list(ckpt.get("history", []))
        print("resumed from %s at step %d" % (resume, step))

    batcher = PairBatcher(_source(args), args.batch_size, args.image_size, seed=args.seed + step)
    fixed = batcher.next() if args.overfit else None
    bar = tqdm(range(step, args.steps), initial=step, total=args.steps, desc="macosnet", disable=args.no_progress,
               dynamic_ncols=True)
    t0 = time.perf_counter()
    for step_i in bar:
        batch = fixed if fixed is not None else batcher.next()
        total, parts = train_step(model, loss_fn, optimizer, batch, device, args.bn)
        history.append(total)
        step = step_i + 1
        bar.set_postfix(loss="%.4f" % total)
        if args.log_every and step % args.log_every == 0:
            msg = "step %d  loss %.4f  " % (step, total) + "  ".join("%s %.4f" % kv for kv in parts.items())
            (bar.write if not args.no_progress else print)(msg)
        if args.save_every and step % args.save_every == 0:
            _save(last, model, optimizer, step, history, args)
    bar.close()
    _save(last, model, optimizer, step, history, args)
    print("trained %d steps in %.1f s; last loss %s; checkpoint: %s"
          % (step, time.perf_counter() - t0, "%.4f" % history[-1] if history else "-", last))
    return 0
