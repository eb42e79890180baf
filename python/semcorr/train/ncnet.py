"""Train NC-Net's neighbourhood consensus with weak supervision (Rocco et al., NeurIPS 2018).

    semcorr train ncnet --set data.train.root=datasets/pf-pascal --set data.val.root=datasets/pf-pascal ...
    semcorr train ncnet --config ncnet_synthetic                 # offline, the bundled photos
    torchrun --nproc_per_node 4 -m semcorr train ncnet ...       # DDP, same steps (see docs/TRAINING.md)

The default config (``semcorr/configs/train/ncnet_pfpascal.yaml``) is the published recipe of ignacio-rocco/ncnet
``train.py`` and its README command for PF-PASCAL: ResNet-101 layer3 features (ImageNet, frozen, in eval mode),
consensus kernels [5, 5, 5] and channels [16, 16, 1], Adam at lr 5e-4, batch 16, 5 epochs, 400 x 400 images,
seed 1, the pairs of ``image_pairs/train_pairs.csv`` (flipped when their ``flip`` column says so) and the
validation loss on ``val_pairs.csv``; the checkpoint with the lowest validation loss is kept as ``best.pt``.

Loss (``weak_loss`` of train.py): the mean, over source and target cells, of the largest softmax probability
of the filtered volume (softmax over the other image's cells), on the negative pairs minus on the positive
pairs. A negative pairs the *source image of the next pair of the batch* with the target (``np.roll(..., -1)``);
here "the batch" is the global batch, whatever the number of processes (the engine gives each pair its partner).
Deviations: the last incomplete batch of an epoch is dropped (train.py keeps it); the validation loss is
computed on the validation pairs in order (train.py shuffles them), so that it is reproducible.
"""
from typing import Any, Dict

from ._engine import Recipe

__all__ = ["RECIPE", "weak_loss"]


def weak_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any] = None) -> Dict[str, Any]:
    """NC-Net's weak loss on a batch with ``src_img``, ``tgt_img`` and ``partner_src_img`` (the negative's
    source): ``score(partner_src, tgt) - score(src, tgt)`` with :func:`semcorr.losses.ncnet.match_score`, a mean
    over the pairs of the batch."""
    from semcorr.losses.ncnet import match_score

    pos = match_score(model.correlation(batch["src_img"], batch["tgt_img"])[0])
    neg = match_score(model.correlation(batch["partner_src_img"], batch["tgt_img"])[0])
    return {"loss": neg - pos, "score_pos": pos.detach(), "score_neg": neg.detach()}


RECIPE = Recipe(name="ncnet", default_config="ncnet_pfpascal", loss=weak_loss, partner_fields=("src_img",),
                trained_parts=("consensus",))

