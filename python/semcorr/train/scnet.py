"""Train SCNet's region-matching head with its hinge loss on proposals (Han et al., ICCV 2017).

    semcorr train scnet --set data.train.root=/data/PF-PASCAL --set data.val.root=/data/PF-PASCAL   # published
    semcorr train scnet --config scnet_synthetic                 # offline: bundled photos, exact warps
    semcorr train scnet --config scnet_synthetic --set model.variant=A --set optimizer.weight_decay=0.005

The recipe is the released MatConvNet code of k-han/SCNet (``SCNet_train.m`` / ``SCNet_train_plus.m``,
``SCNet_*_init.m``, ``vl_nnpfloss.m``): one pair per batch, SGD with momentum 0.9 (MatConvNet's update, equal to
torch's SGD with L2 weight decay), learning rate 1e-4, weight decay 0.005 (A, AG) or 0.01 (AG+), 200 epochs,
the momentum reset at the start of every epoch (``process_epoch`` re-initialises it); only the FC layer is trained
(VGG-16 has learning rate 0; AG+ trains ``cnv_fc_2`` with ``cnv_fc_1`` frozen:
:func:`semcorr.models.scnet.trainable_parameters`); loss: the hinge loss of ``vl_nnpfloss`` against the IoU of the
warped source proposals with the target proposals (:meth:`SCNet.loss`, :func:`semcorr.models.scnet.region_iou`).

Data: the released training set (``PF-PASCAL-RP-500.mat``) is a MATLAB ``imdb`` that is not redistributed;
``data.train.kind: pfpascal_proposals`` rebuilds it from a PF-PASCAL download as ``PF-PASCAL-code`` does
(:class:`PFPascalProposalPairs`: 500 proposals per image, the *active* source proposals of
``crop_active_boxset.m``, the IoU of their keypoint-TPS warp with the target proposals, ``makeGT_PASCAL.m``).
Offline, ``synthetic_proposals`` gives the bundled photos under random warps, sliding-window proposals and the
IoU of the *exact* warp. AG+ should start from a
trained SCNet-A (``SCNet_AGplus_init.m`` copies ``cnv_fc_1``); pass its weights with ``model.checkpoint``.
"""
from typing import Any, Dict

import numpy as np
import torch
from torch.utils.data import Dataset

from ._engine import Recipe

__all__ = ["RECIPE", "ProposalPairs", "PFPascalProposalPairs", "active_proposals", "keypoint_warp", "hinge_loss"]


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


#: ``set_conf_PASCAL.m``: a proposal is active when this fraction of its area lies in the object box
ACTIVE_INTERSECTION = 0.75


def active_proposals(boxes: torch.Tensor, bbox, kps: np.ndarray) -> torch.Tensor:
    """``crop_active_boxset.m``: indices of the proposals with more than 75 % of their area inside the object box
    and at least one (visible) keypoint inside them. boxes (R, 4), bbox (4,), kps (K, 2) (x, y)."""
    b = boxes.double()
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp(min=1e-9)
    ob = torch.as_tensor(np.asarray(bbox, dtype=np.float64).reshape(4))
    iw = (torch.minimum(b[:, 2], ob[2]) - torch.maximum(b[:, 0], ob[0])).clamp(min=0)
    ih = (torch.minimum(b[:, 3], ob[3]) - torch.maximum(b[:, 1], ob[1])).clamp(min=0)
    k = torch.as_tensor(np.asarray(kps, dtype=np.float64).reshape(-1, 2))
    covers = ((k[None, :, 0] >= b[:, None, 0]) & (k[None, :, 0] <= b[:, None, 2]) &
              (k[None, :, 1] >= b[:, None, 1]) & (k[None, :, 1] <= b[:, None, 3])).any(1)
    return torch.nonzero((iw * ih / area > ACTIVE_INTERSECTION) & covers).flatten()


def keypoint_warp(src_kps: np.ndarray, tgt_kps: np.ndarray, src_box, tgt_box):
    """``makeGT_PASCAL.m``'s ``tpswarp``: the thin-plate spline through the keypoint pairs, as a map of (P, 2)
    source pixels to target pixels. With fewer than 3 keypoints (no TPS), ours: the map of the source object box
    onto the target box (scale + translation)."""
    from semcorr.data.warps import TPSWarp

    if len(src_kps) >= 3:
        # TPSWarp is defined by its inverse (target -> source); with the roles swapped its inverse is A -> B
        tps = TPSWarp(src_ctrl=np.asarray(tgt_kps, np.float64), tgt_ctrl=np.asarray(src_kps, np.float64))
        return lambda p: torch.from_numpy(tps.inverse(p.detach().cpu().numpy().astype(np.float64)))
    sb, tb = np.asarray(src_box, np.float64), np.asarray(tgt_box, np.float64)
    scale = (tb[2:] - tb[:2]) / np.maximum(sb[2:] - sb[:2], 1e-9)
    return lambda p: torch.from_numpy((p.detach().cpu().numpy() - sb[:2]) * scale + tb[:2])


class PFPascalProposalPairs(Dataset):
    """SCNet's training pairs rebuilt from PF-PASCAL (HPF layout with ``Annotations/<class>/*.mat``): images at
    their size, ``n_proposals`` proposals per image (``rp``: :func:`semcorr.models.scnet.randomized_prim_boxes`,
    SCNet's; ``sliding``: ours), the active source proposals ``active`` and their IoU ``iou`` with the target
    proposals through the keypoint TPS (see :func:`active_proposals`, :func:`keypoint_warp`). Proposals are
    computed once per image and kept (the released pipeline stores them)."""

    def __init__(self, root, split: str = "trn", proposals: str = "rp", n_proposals: int = 500, rp_alpha=None):
        from semcorr.data.datasets import PFPascal

        if proposals not in ("rp", "sliding"):
            raise ValueError("pfpascal_proposals: proposals must be rp or sliding, got %r" % (proposals,))
        self.pairs = PFPascal(root, split=split, size=None)
        self.proposals, self.n_proposals, self.rp_alpha = proposals, int(n_proposals), rp_alpha
        self._boxes: Dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _proposals(self, key: str, img: np.ndarray) -> torch.Tensor:
        from semcorr.models.scnet import randomized_prim_boxes, sliding_window_boxes

        if key not in self._boxes:
            self._boxes[key] = (randomized_prim_boxes(img, self.n_proposals, alpha=self.rp_alpha)
                                if self.proposals == "rp" else sliding_window_boxes(*img.shape[:2])).float()
        return self._boxes[key]

    def __getitem__(self, i: int) -> Dict[str, Any]:
        from semcorr.models.scnet import region_iou

        raw = self.pairs.load_raw(i)
        if raw.src_bbox is None or raw.tgt_bbox is None:
            raise ValueError("pfpascal_proposals: pair %s has no object boxes (Annotations/*.mat needed)" % raw.pair_id)
        row = self.pairs.rows[i]
        sb, tb = self._proposals(row["src"], raw.src_img), self._proposals(row["tgt"], raw.tgt_img)
        active = active_proposals(sb, raw.src_bbox, raw.src_kps)
        warp = keypoint_warp(raw.src_kps, raw.tgt_kps, raw.src_bbox, raw.tgt_bbox)
        iou = region_iou(sb[active], tb, warp, raw.tgt_img.shape[:2]).float()
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()  # noqa: E731
        return {"index": int(i), "src_img": t(raw.src_img), "tgt_img": t(raw.tgt_img), "src_boxes": sb,
                "tgt_boxes": tb, "active": active, "iou": iou}


def build_data(spec: Dict[str, Any]) -> Dataset:
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "synthetic_proposals":
        return ProposalPairs(**spec)
    if kind == "pfpascal_proposals":
        return PFPascalProposalPairs(**spec)
    raise ValueError("scnet: data kind %r unknown; choose pfpascal_proposals or synthetic_proposals" % (kind,))


def hinge_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any] = None) -> Dict[str, Any]:
    """The released objective (:meth:`semcorr.models.scnet.SCNet.loss`), averaged over the pairs of the batch
    (MatConvNet divides the summed derivatives by the batch size)."""
    def image(x, b):  # images of different sizes are collated as lists
        return x[b][None] if isinstance(x, list) else x[b:b + 1]

    n = len(batch["index"])
    active = batch.get("active")
    losses = [model.loss(image(batch["src_img"], b), image(batch["tgt_img"], b), batch["src_boxes"][b],
                         batch["tgt_boxes"][b], batch["iou"][b], None if active is None else active[b])
              for b in range(n)]
    return {"loss": torch.stack(losses).mean()}


def param_groups(model, cfg):
    from semcorr.models.scnet import trainable_parameters

    return [{"params": trainable_parameters(model)}]


def reset_momentum(optimizer, epoch: int, cfg) -> None:
    """``SCNet_train*.m`` starts every epoch with zero momentum."""
    if (cfg.get("optimizer") or {}).get("reset_momentum_each_epoch", True):
        optimizer.state.clear()


def trained_parts(model):
    """The FC the released scripts train (see :func:`semcorr.models.scnet.trainable_parameters`)."""
    return ("geometry FC",) if model.variant == "AG+" else ("appearance FC",)


RECIPE = Recipe(name="scnet", default_config="scnet_pfpascal", loss=hinge_loss, param_groups=param_groups,
                on_epoch_start=reset_momentum, build_data=build_data, trained_parts=trained_parts)

