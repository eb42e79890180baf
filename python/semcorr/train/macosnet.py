"""Train MaCoSNet (joint semantic matching + co-segmentation) with weak supervision, the released schedule.

    semcorr train macosnet --set model.checkpoint=trained_models/weakalign.pth.tar \\
        --set data.train.root=datasets/pf-pascal --set data.pck.root=datasets/pf-pascal     # released train.sh
    semcorr train macosnet --config macosnet_synthetic                  # offline: bundled photos under warps
    torchrun --nproc_per_node 4 -m semcorr train macosnet ...           # DDP (docs/TRAINING.md)
    semcorr match --checkpoint runs/macosnet_pfpascal/last.pt ...       # build_model("macosnet", checkpoint=...)

The default config (``semcorr/configs/train/macosnet_pfpascal.yaml``) is YunChunChen/MaCoSNet-pytorch's
``train.sh`` with the ``parser/parser.py`` defaults it does not set: ResNet-101 (layer 3) at 240 px, initialised
from a WeakAlign checkpoint (``--model weakalign.pth.tar``: ``model.checkpoint``; without it the regressors start
at the identity and the model says it is untrained), the whole network fine-tuned (``--train-fe`` True with
``--fe-finetune-params ''``, which every parameter name contains) with the epoch run in ``model.eval()`` (BatchNorm
statistics fixed, ``train.batchnorm: eval``), Adam with lr 5e-8 and weight decay 0, batch 4, 60 epochs, seed 1;
loss :class:`semcorr.losses.macosnet.MaCoSNetLoss` (its semantics are the released ones, see that module) with
matching and cycle at weight 1, transitivity, contrastive and task terms off (``loss.weights``); data: PF-PASCAL's
weak training pairs (WeakAlign's ``train_pairs`` CSV: source, target, class, flip) with the released random crop
(each image cropped to rows ``[U(0, h/4), 3h/4 + U(0, h/4))`` and columns likewise, then flipped when the CSV
says so, then resized to 240 x 240 by the identity affine sampler).

Deviations (engine-wide or ours): the released run selects its best model by validation PCK and stops early when
it falls 0.05 below the best; here ``best.pt`` is the lowest validation loss when ``data.val`` is set and every
epoch's validation PCK is logged (``data.pck``), without early stopping. The last incomplete batch is dropped.
The random crop uses the process's torch generator: crops (an augmentation) differ with the number of processes;
``data.train.random_crop: false`` gives runs equal whatever that number. With the transitivity term on, image C
of pair i is the source image of the next pair of the global batch when it has the same class (the released
``PFPascal`` set produces no image C, its ``--trans-loss`` is off).
"""
import csv
import json
from pathlib import Path
from typing import Any, Dict

import torch
from torch.utils.data import Dataset

from ._engine import Recipe
from ._engine_data import PairsCSV, SyntheticTrainPairs, build_pair_dataset

__all__ = ["RECIPE", "CroppedPairsCSV", "build_data", "macosnet_loss"]


class CroppedPairsCSV(PairsCSV):
    """MaCoSNet's ``data/pf_pascal.py`` ``PFPascal``: the weak pair list of :class:`PairsCSV` plus each pair's class
    (third column, ``category``) and, with ``random_crop``, the released random crop before the flip and resize."""

    def __init__(self, root, csv_path, image_size: int = 240, random_crop: bool = True):
        super().__init__(root, csv_path, image_size)
        self.random_crop = bool(random_crop)
        with open(self.csv_path, newline="") as f:
            rows = [r for r in list(csv.reader(f))[1:] if r and r[0].strip()]
        self.categories = [r[2].strip() if len(r) > 2 else "" for r in rows]

    def _image(self, rel: str, flip: bool) -> torch.Tensor:
        import numpy as np

        from semcorr.data.datasets.base import read_image, resolve_path

        from ._engine_data import resize_corner_aligned

        img = read_image(resolve_path(self.root, rel))
        if self.random_crop:
            h, w = img.shape[:2]
            # np.random.randint(h/4) and 3h/4 + randint(h/4) of the released get_image, from torch's generator
            r = [int(torch.randint(max(1, int(n / 4)), (1,))) for n in (h, h, w, w)]
            top, bottom, left, right = r[0], int(3 * h / 4 + r[1]), r[2], int(3 * w / 4 + r[3])
            img = img[top:bottom, left:right]
        if flip:
            img = img[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
        return resize_corner_aligned(t, self.size)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        s = super().__getitem__(i)
        s["category"] = self.categories[i]
        return s


class _CategorisedSynthetic(Dataset):
    """The offline pairs with their photo's name as the class (for the transitivity triplets)."""

    def __init__(self, **spec):
        self.pairs = SyntheticTrainPairs(**spec)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        s = self.pairs[i]
        s["category"] = str(self.pairs.pairs.items[i][0])
        return s


def build_data(spec: Dict[str, Any]) -> Dataset:
    """``data.train`` / ``data.val``: ``{kind: pairs_csv, root, csv, image_size, random_crop}`` (released) or
    ``{kind: synthetic, ...}`` (offline)."""
    spec = dict(spec)
    kind = spec.get("kind")
    if kind == "pairs_csv":
        missing = [k for k in ("root", "csv") if k not in spec]
        if missing:
            raise ValueError("macosnet: data kind pairs_csv needs %s" % ", ".join(missing))
        return CroppedPairsCSV(spec["root"], spec["csv"], spec.get("image_size", 240), spec.get("random_crop", True))
    if kind == "synthetic":
        spec.pop("kind")
        return _CategorisedSynthetic(**spec)
    return build_pair_dataset(spec)  # names the known kinds in its error


_LOSSES: Dict[str, Any] = {}


def _loss_module(cfg: Dict[str, Any], device) -> torch.nn.Module:
    """:class:`MaCoSNetLoss` of the config's ``loss`` section (``weights``, ``margin``, ``perceptual``), built once
    per process (its perceptual network F is fixed)."""
    from semcorr.losses.macosnet import MaCoSNetLoss, PerceptualFeatures

    lcfg = dict(cfg.get("loss") or {})
    key = json.dumps([lcfg, str(device)], sort_keys=True, default=str)
    if key not in _LOSSES:
        weights = lcfg.pop("weights", None)
        kind = lcfg.pop("perceptual", "auto")
        if kind == "auto":
            kind = "tiny" if cfg["model"].get("backbone") == "tiny" else "resnet50"
        need_f = bool((weights or {}).get("contrast"))
        _LOSSES[key] = MaCoSNetLoss(PerceptualFeatures(kind) if need_f else None, weights=weights,
                                    **lcfg).to(device)
    return _LOSSES[key]


def macosnet_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The weighted MaCoSNet objective on a batch of pairs (``src_img`` = A, ``tgt_img`` = B). Every term is a
    mean over the pairs (the transitivity term over the pairs that have an image C)."""
    if model.training and str((cfg.get("train") or {}).get("batchnorm", "eval")) == "eval":
        model.eval()  # released train.py: model.eval() before process_epoch (BatchNorm statistics fixed)
    loss_fn = _loss_module(cfg, batch["src_img"].device)
    img_c = has_c = None
    if loss_fn.weights["trans"] and "partner_src_img" in batch:
        img_c = batch["partner_src_img"]
        has_c = torch.tensor([a == b for a, b in zip(batch["category"], batch["partner_category"])],
                             dtype=torch.bool, device=img_c.device)
    total, parts = loss_fn(model.training_outputs(batch["src_img"], batch["tgt_img"], img_c, has_c))
    out = {"loss": total}
    out.update({k: torch.tensor(v) for k, v in parts.items()})
    return out


def build(cfg: Dict[str, Any]):
    """``build_model("macosnet", **model)``; a ``model.checkpoint`` written by ``semcorr train macosnet`` is rebuilt
    with its own configuration (:mod:`semcorr.models.trained`), other checkpoints (WeakAlign, released MaCoSNet)
    initialise the model built from ``model``."""
    from semcorr.models import build_model
    from semcorr.models.trained import read_training_checkpoint

    kw = {**cfg["model"], **(cfg.get("model_train") or {})}
    ck = kw.get("checkpoint")
    if isinstance(ck, str) and Path(ck).is_file() and read_training_checkpoint(ck) is not None:
        return build_model("macosnet", checkpoint=ck)
    return build_model("macosnet", **kw)


def trained_parts(model):
    """The regressors always, the encoder unless frozen; the decoder only learns from the contrastive / task
    terms (off in the released schedule) and so is not counted."""
    return ("regressors",) + (() if model.freeze_backbone else ("backbone",))


RECIPE = Recipe(name="macosnet", default_config="macosnet_pfpascal", loss=macosnet_loss,
                partner_fields=("src_img", "category"), build=build, build_data=build_data,
                trained_parts=trained_parts)

