"""Train SFNet's adaptation layers on masked affine pairs from a segmentation dataset (Lee et al., CVPR 2019).

    semcorr train sfnet --set data.train.root=/data/VOC2012 --set data.pck.root=/data/pf-pascal   # released
    semcorr train sfnet --config sfnet_synthetic                  # offline: masked composites of bundled photos
    torchrun --nproc_per_node 4 -m semcorr train sfnet ...        # DDP (docs/TRAINING.md)
    semcorr match --checkpoint runs/sfnet_voc/last.pt ...         # build_model("sfnet", checkpoint=...)

The default config (``semcorr/configs/train/sfnet_voc.yaml``) is cvlab-yonsei/SFNet's ``train.py``: the
ImageNet ResNet-101 frozen (in eval mode) and the two adaptation layers trained with Adam at lr 3e-5, divided by
5 after epoch 30 of 40, batch 16, 320 x 320 images (20 x 20 grids), kernel soft-argmax beta 50 and sigma 5, loss
weights mask 3 / flow 16 / smoothness 0.5 (:class:`semcorr.losses.sfnet.SFNetLoss`, a mean over the pairs).
Data: PASCAL VOC 2012 segmentation images with their foreground masks (:class:`semcorr.data.datasets.voc.VOCMasks`,
``data.train.kind: voc``) turned into pairs exactly as the released ``Pascal_Seg_Synth`` does
(:class:`semcorr.data.masked_affine_pairs.MaskedAffinePairs`: pair flip, two colour jitters, two random affine
warps, masks of the foreground both images see, on the 20 x 20 grid). Offline, ``kind: synthetic_masks`` gives
masked composites of the bundled photos through the same pipeline.

Deviations: the released run keeps the checkpoint with the best validation PCK; the engine logs the validation PCK
(PF-PASCAL val pairs, alpha 0.1 of the bounding box) every epoch and keeps ``best.pt`` by validation loss when
``data.val`` is set. The released ``--seed`` defaults to a random one; ours to 0. The released training images are
a pre-processed ``.npy`` of VOC (PF-PASCAL's test images removed); ours reads the VOC folder (list the ids to drop
in ``data.train.exclude``). The last incomplete batch of an epoch is dropped. The adaptation layers' BatchNorm
layers train on batch statistics: under torchrun each process normalises over its own ``batch_size / W`` pairs
(no SyncBatchNorm), so unlike the other recipes an SFNet run depends on the number of processes W.
"""
from typing import Any, Dict

import torch
from torch.utils.data import Dataset

from ._engine import Recipe

__all__ = ["RECIPE", "build_data", "sfnet_loss"]


def build_data(spec: Dict[str, Any]) -> Dataset:
    """``data.train`` / ``data.val``: ``{kind: voc, root, split, masks, exclude, image_size}`` (released) or
    ``{kind: synthetic_masks, n, image_size, seed}`` (offline), both through the released pair pipeline;
    ``pairs_seed: N`` fixes each item's pair (a reproducible validation loss)."""
    from semcorr.data.masked_affine_pairs import MaskedAffinePairs, SyntheticMaskedImages

    spec = dict(spec)
    kind = spec.pop("kind", None)
    size = int(spec.pop("image_size", 320))
    feature_size = spec.pop("feature_size", None)
    pairs_seed = spec.pop("pairs_seed", None)  # fixed pairs (validation); None: new augmentations every epoch
    if kind == "voc":
        from semcorr.data.datasets.voc import VOCMasks

        if "root" not in spec:
            raise ValueError("sfnet: data kind voc needs root (the VOC2012 folder)")
        source = VOCMasks(**spec)
    elif kind == "synthetic_masks":
        source = SyntheticMaskedImages(size=size, **spec)
    else:
        raise ValueError("sfnet: data kind %r unknown; choose voc or synthetic_masks" % (kind,))
    return MaskedAffinePairs(source, image_size=size, feature_size=feature_size, seed=pairs_seed)


_LOSSES: Dict[str, Any] = {}


def sfnet_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """:class:`SFNetLoss` (weights of ``loss``) of both match fields against the pairs' masks, divided by the number
    of pairs as the released ``loss_function`` does (a mean over the pairs); masks not on the model's grid (another
    backbone stride) are brought onto it with :func:`semcorr.losses.sfnet.resize_mask`."""
    from semcorr.losses.sfnet import SFNetLoss, resize_mask

    weights = dict(cfg.get("loss") or {})
    key = repr(sorted(weights.items()))
    if key not in _LOSSES:
        _LOSSES[key] = SFNetLoss(**weights)
    out = model.flows(batch["src_img"], batch["tgt_img"])

    def on_grid(m, g):
        return m if tuple(m.shape[-2:]) == tuple(g.shape[1:3]) else resize_mask(m, g.shape[1:3])

    terms = _LOSSES[key](out["grid_S2T"], out["grid_T2S"], on_grid(batch["src_mask"], out["grid_S2T"]),
                         on_grid(batch["tgt_mask"], out["grid_T2S"]))
    # SFNetLoss sums over the pairs; the released custom_loss.py divides the weighted sum by the batch size
    n = batch["src_img"].shape[0]
    return {"loss": terms["total"] / n, **{k: v.detach() / n for k, v in terms.items() if k != "total"}}


RECIPE = Recipe(name="sfnet", default_config="sfnet_voc", loss=sfnet_loss, build_data=build_data,
                trained_parts=("adaptation layers",))

