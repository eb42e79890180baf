"""NC-Net's weakly-supervised training loss (Rocco et al. 2018, Sec. 3.3).

Only image pairs known to match are needed: the loss rewards sharp (confident) matching distributions on the
positive pairs and penalises them on negative pairs, made by pairing each source image with the target of
the next pair in the batch (the batch rolled by one)."""
import torch

__all__ = ["match_score", "weak_loss"]


def match_score(corr: torch.Tensor) -> torch.Tensor:
    """Mean over cells and both directions of the largest softmax probability: for a filtered volume
    (B, 1, Hs, Ws, Ht, Wt) (or (B, Hs, Ws, Ht, Wt)), softmax over the target cells for each source cell and
    over the source cells for each target cell; the score of the batch is the mean of the maxima (in [0, 1])."""
    B = corr.shape[0]
    Hs, Ws, Ht, Wt = corr.shape[-4:]
    flat = corr.reshape(B, Hs * Ws, Ht * Wt)
    best_t = torch.softmax(flat, dim=2).max(dim=2).values  # each source cell over the target cells
    best_s = torch.softmax(flat, dim=1).max(dim=1).values  # each target cell over the source cells
    return (best_t.mean() + best_s.mean()) / 2


def weak_loss(model, src_img: torch.Tensor, tgt_img: torch.Tensor) -> torch.Tensor:
    """``score(negative pairs) - score(positive pairs)`` for a model with
    ``correlation(src, tgt) -> (volume, ...)`` (:class:`semcorr.models.ncnet.NCNet`). Needs B >= 2."""
    if src_img.shape[0] < 2:
        raise ValueError("weak_loss needs a batch of at least 2 pairs (negatives are the batch rolled by one), "
                         "got %d" % src_img.shape[0])
    pos = model.correlation(src_img, tgt_img)[0]
    neg = model.correlation(torch.roll(src_img, shifts=-1, dims=0), tgt_img)[0]
    return match_score(neg) - match_score(pos)
