"""Train SCNet's region-matching head with its hinge loss on proposals (Han et al., ICCV 2017).

    semcorr train scnet --config scnet_synthetic                 # offline: bundled photos, exact warps
    semcorr train scnet --config scnet_synthetic --set model.variant=A --set optimizer.weight_decay=0.005

The recipe is the released MatConvNet code of k-han/SCNet (``SCNet_train.m`` / ``SCNet_train_plus.m``,
``SCNet_*_init.m``, ``vl_nnpfloss.m``): one pair per batch, SGD with momentum 0.9 (MatConvNet's update, equal to
torch's SGD with L2 weight decay), learning rate 1e-4, weight decay 0.005 (A, AG) or 0.01 (AG+), 200 epochs,
the momentum reset at the start of every epoch (``process_epoch`` re-initialises it); only the FC layer is trained
(VGG-16 has learning rate 0; AG+ trains ``cnv_fc_2`` with ``cnv_fc_1`` frozen:
:func:`semcorr.models.scnet.trainable_parameters`); loss: the hinge loss of ``vl_nnpfloss`` against the IoU of the
warped source proposals with the target proposals (:meth:`SCNet.loss`, :func:`semcorr.models.scnet.region_iou`).

Data: the released training set (``PF-PASCAL-RP-500.mat``: 500 Randomized Prim's proposals per image, IoU to a
keypoint thin-plate-spline warp) is a MATLAB ``imdb`` that is not redistributed, and its generation needs the
MATLAB RP code; offline, ``data.train.kind: synthetic_proposals`` gives the bundled photos under random warps
with sliding-window proposals (or the model's own) and the IoU of the *exact* warp. AG+ should start from a
trained SCNet-A (``SCNet_AGplus_init.m`` copies ``cnv_fc_1``); pass its weights with ``model.checkpoint``.
"""
from typing import Any, Dict

import numpy as np
import torch
from torch.utils.data import Dataset

from ._engine import Recipe, add_engine_arguments, run as _run

__all__ = ["RECIPE", "ProposalPairs", "hinge_loss", "add_arguments", "run"]


class ProposalPairs(Dataset):
    """Synthetic SCNet training pairs: a bundled photo (``src_img``), a random warp of it (``tgt_img``), the
    proposals of both (``src_boxes``, ``tgt_boxes``: sliding windows) and their IoU ground truth ``iou``
    (``region_iou`` of the exact warp)."""

    def __init__(self, image_size: int = 224, pairs: int = 16, seed: int = 0, kind: str = "affine",
                 images=("astronaut", "chelsea", "coffee", "rocket")):
        self.size, self.n, self.seed, self.kind, self.images = int(image_size), int(pairs), int(seed), kind, images

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Dict[str, Any]:
        from semcorr.data.sample import sample_pair
        from semcorr.models.scnet import region_iou, sliding_window_boxes

        pair = sample_pair(seed=self.seed * 100003 + int(i), size=self.size, image=self.images[i % len(self.images)],
                           kind=self.kind)
        src, tgt = pair.tensors()
        boxes = sliding_window_boxes(self.size, self.size).float()

        def warp_points(p: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(np.asarray(pair.warp.forward(p.detach().cpu().numpy()), dtype=np.float64))

        iou = region_iou(boxes, boxes, warp_points, (self.size, self.size)).float()
        return {"index": int(i), "src_img": src[0], "tgt_img": tgt[0], "src_boxes": boxes, "tgt_boxes": boxes,
                "iou": iou}


def build_data(spec: Dict[str, Any]) -> Dataset:
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind != "synthetic_proposals":
        raise ValueError("scnet: data kind %r unknown; the released imdb (PF-PASCAL-RP-500.mat) is not readable "
                         "here, use synthetic_proposals" % (kind,))
    return ProposalPairs(**spec)


def hinge_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any] = None) -> Dict[str, Any]:
    """The released objective (:meth:`semcorr.models.scnet.SCNet.loss`), averaged over the pairs of the batch
    (MatConvNet divides the summed derivatives by the batch size)."""
    losses = [model.loss(batch["src_img"][b:b + 1], batch["tgt_img"][b:b + 1], batch["src_boxes"][b],
                         batch["tgt_boxes"][b], batch["iou"][b]) for b in range(batch["src_img"].shape[0])]
    return {"loss": torch.stack(losses).mean()}


def param_groups(model, cfg):
    from semcorr.models.scnet import trainable_parameters

    return [{"params": trainable_parameters(model)}]


def reset_momentum(optimizer, epoch: int, cfg) -> None:
    """``SCNet_train*.m`` starts every epoch with zero momentum."""
    if (cfg.get("optimizer") or {}).get("reset_momentum_each_epoch", True):
        optimizer.state.clear()


RECIPE = Recipe(name="scnet", default_config="scnet_synthetic", loss=hinge_loss, param_groups=param_groups,
                on_epoch_start=reset_momentum, build_data=build_data)


def add_arguments(p):
    return add_engine_arguments(p, RECIPE.default_config)


def run(args) -> int:
    return _run(RECIPE, args)
