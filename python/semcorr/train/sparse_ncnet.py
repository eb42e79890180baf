"""Train Sparse NC-Net's sparse neighbourhood consensus with weak supervision (Rocco et al., ECCV 2020).

    semcorr train sparse-ncnet --set data.train.root=datasets/ivd ...          # the published recipe (IVD)
    semcorr train sparse-ncnet --config sparse_ncnet_pfpascal ...               # the same on PF-PASCAL pairs
    semcorr train sparse-ncnet --config sparse_ncnet_synthetic                  # offline, the bundled photos

The default config (``semcorr/configs/train/sparse_ncnet_ivd.yaml``) is the released ``train.py`` of
ignacio-rocco/sparse-ncnet with its defaults (the README: "run python train.py"): the Indoor Venues Dataset pair
lists of NC-Net (``datasets/ivd/image_pairs/{train,val}_pairs.csv``), ResNet-101 layer3 (ImageNet, frozen, eval
mode), k = 10, symmetric sparse consensus with kernels [3, 3] and channels [16, 1], no batch norm, Adam at lr 5e-4,
batch 16, 5 epochs, 400 x 400 images, seed 10. Loss: :mod:`semcorr.losses.sparse_ncnet` (the released
``get_scores`` of the consensus output, negatives = the next pair's source in the global batch).
Deviations: those of the loss module, plus the engine's (last incomplete batch dropped, validation pairs in order).
"""
from typing import Any, Dict

from ._engine import Recipe

__all__ = ["RECIPE", "weak_loss"]


def weak_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any] = None) -> Dict[str, Any]:
    """Sparse NC-Net's weak loss on a batch with ``src_img``, ``tgt_img``, ``partner_src_img``."""
    from semcorr.losses.sparse_ncnet import sparse_weak_loss

    loss, pos, neg = sparse_weak_loss(model, batch["src_img"], batch["tgt_img"], batch["partner_src_img"])
    return {"loss": loss, "score_pos": pos.detach(), "score_neg": neg.detach()}


RECIPE = Recipe(name="sparse-ncnet", default_config="sparse_ncnet_ivd", loss=weak_loss, partner_fields=("src_img",),
                trained_parts=("consensus",))

