"""Train PMNC's features and scoring function jointly with keypoint supervision (Lee et al., CVPR 2021).

    semcorr train pmnc --set data.train.root=/data/PF-PASCAL --set data.val.root=/data/PF-PASCAL \\
                       --set data.pck.root=/data/PF-PASCAL                     # the paper's setting
    semcorr train pmnc --config pmnc_synthetic                                 # offline: bundled photos, warps
    torchrun --nproc_per_node 4 -m semcorr train pmnc ...                     # DDP (docs/TRAINING.md)

What the slides (the seed; no training code is released) say, and what we follow: a *proxy model* trains the
scoring function: the scorer is applied densely to the whole correlation volume ("dense scoring", which equals the
window scores PatchMatch computes, :meth:`semcorr.models.pmnc.PMNCScorer.dense`); for a source cell, its scores
over the target cells go through a softmax and are compared with a *ground-truth probability map* by cross
entropy. The features and the scorer are trained together (the correlation is differentiable), supervised by the
keypoint pairs of PF-PASCAL's training split (the dataset of the paper's tables).

Where the slides are silent, our choices (each a config entry, ``semcorr/configs/train/pmnc_pfpascal.yaml``):
the ground-truth map of a keypoint pair: the source cell holding the source keypoint; the target keypoint's
position in target-grid units spread bilinearly over its 4 nearest target cells (several keypoints in one source
cell: the mean of their maps); the softmax temperature: the scorer's learnt ``logit_scale``; the cross entropy is
a mean over the supervised source cells of a pair, then over the pairs. Optimisation follows NC-Net's released
PF-PASCAL recipe, which PMNC builds on (Adam, lr 5e-4 for the scorer, batch 16, 5 epochs, seed 1), with the
backbone (ResNet-101 ImageNet, layer 4, images at their size with the longer side resized to 800 px as at test
time) fine-tuned at lr 1e-5 (ours) with its batch-norm statistics frozen (eval mode: batches of one pair).
"""
from typing import Any, Dict, List

import numpy as np
import torch

from ._engine import Recipe

__all__ = ["RECIPE", "keypoint_probability_map", "keypoint_ce_loss", "gt_probability_map", "dense_ce_loss"]


# --------------------------------------------------------------------------------------------------------
# ground truth


def _bilinear_cells(gx: np.ndarray, gy: np.ndarray, Ht: int, Wt: int):
    """The 4 target cells around grid positions (gx, gy) and their bilinear weights: ``[(yi, xi, w), ...]``
    (arrays of the positions' shape; positions are assumed inside the cell-centre rectangle)."""
    x0 = np.clip(np.floor(gx), 0, max(0, Wt - 2)).astype(np.int64)
    y0 = np.clip(np.floor(gy), 0, max(0, Ht - 2)).astype(np.int64)
    fx, fy = np.clip(gx - x0, 0, 1), np.clip(gy - y0, 0, 1)
    out = []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            out.append((np.minimum(Ht - 1, y0 + dy), np.minimum(Wt - 1, x0 + dx), wy * wx))
    return out


def _to_grid(x: np.ndarray, img_len: float, grid_len: int) -> np.ndarray:
    """Pixel coordinate -> grid coordinate, cell centres at ``(i + 0.5) img_len / grid_len - 0.5``."""
    return (x + 0.5) * grid_len / img_len - 0.5


def gt_probability_map(warp, src_size, tgt_size, src_grid, tgt_grid):
    """Ground truth of a pair with a known dense warp: ``(prob (Hs, Ws, Ht, Wt), mask (Hs, Ws) bool)``.

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
    gx, gy = _to_grid(tgt[..., 0], Wt_img, Wt), _to_grid(tgt[..., 1], Ht_img, Ht)
    mask = (gx >= 0) & (gx <= Wt - 1) & (gy >= 0) & (gy <= Ht - 1)
    prob = torch.zeros(Hs, Ws, Ht, Wt, dtype=torch.float64)
    ii, jj = np.nonzero(mask)
    for yi, xi, w in _bilinear_cells(gx[mask], gy[mask], Ht, Wt):
        prob.index_put_((torch.from_numpy(ii), torch.from_numpy(jj), torch.from_numpy(yi), torch.from_numpy(xi)),
                        torch.from_numpy(np.asarray(w, np.float64)), accumulate=True)
    return prob.float(), torch.from_numpy(mask)


def keypoint_probability_map(src_kps, tgt_kps, src_size, tgt_size, src_grid, tgt_grid):
    """Ground truth of a keypoint pair: ``(prob (Hs, Ws, Ht, Wt), mask (Hs, Ws) bool)``.

    src_kps, tgt_kps: (K, 2) (x, y) pixels of the images as given to the model (rows with a negative or
    non-finite coordinate in either image are padding and skipped); sizes (H, W) of those images; grids (h, w)
    of the feature maps. Keypoint k supervises the source cell whose centre is nearest to it; its target is spread
    bilinearly over the 4 target cells around it; a source cell with several keypoints gets the mean of their maps.
    Keypoints whose target lies outside the target grid's cell-centre rectangle are clamped onto it (the released
    code of NC-Net-style losses keeps every annotated keypoint)."""
    (Hs, Ws), (Ht, Wt) = src_grid, tgt_grid
    s = np.asarray(src_kps, np.float64).reshape(-1, 2)
    t = np.asarray(tgt_kps, np.float64).reshape(-1, 2)
    ok = np.isfinite(s).all(1) & np.isfinite(t).all(1) & (s >= 0).all(1) & (t >= 0).all(1)
    s, t = s[ok], t[ok]
    prob = torch.zeros(Hs, Ws, Ht, Wt, dtype=torch.float64)
    count = torch.zeros(Hs, Ws, dtype=torch.float64)
    if len(s):
        sj = np.clip(np.rint(_to_grid(s[:, 0], src_size[1], Ws)), 0, Ws - 1).astype(np.int64)
        si = np.clip(np.rint(_to_grid(s[:, 1], src_size[0], Hs)), 0, Hs - 1).astype(np.int64)
        gx = np.clip(_to_grid(t[:, 0], tgt_size[1], Wt), 0, Wt - 1)
        gy = np.clip(_to_grid(t[:, 1], tgt_size[0], Ht), 0, Ht - 1)
        si_t, sj_t = torch.from_numpy(si), torch.from_numpy(sj)
        for yi, xi, w in _bilinear_cells(gx, gy, Ht, Wt):
            prob.index_put_((si_t, sj_t, torch.from_numpy(yi), torch.from_numpy(xi)),
                            torch.from_numpy(np.asarray(w, np.float64)), accumulate=True)
        count.index_put_((si_t, sj_t), torch.ones(len(s), dtype=torch.float64), accumulate=True)
    mask = count > 0
    prob[mask] /= count[mask][:, None, None]
    return prob.float(), mask


# --------------------------------------------------------------------------------------------------------
# loss


def dense_ce_loss(scores: torch.Tensor, prob: torch.Tensor, mask: torch.Tensor, logit_scale: torch.Tensor):
    """Cross entropy between softmax over target cells of ``exp(logit_scale) * scores`` and ``prob``, averaged over
    the masked source cells. scores, prob (B, Hs, Ws, Ht, Wt); mask (B, Hs, Ws)."""
    B, Hs, Ws, Ht, Wt = scores.shape
    logp = torch.log_softmax(logit_scale.exp() * scores.reshape(B, Hs, Ws, Ht * Wt), -1)
    ce = -(prob.reshape(B, Hs, Ws, Ht * Wt) * logp).sum(-1)
    m = mask.to(ce.dtype)
    return (ce * m).sum() / m.sum().clamp_min(1)


def _image(x, b: int) -> torch.Tensor:
    """Pair ``b``'s image as (1, 3, H, W): images of one size are stacked, of different sizes kept as a list."""
    return x[b][None] if isinstance(x, list) else x[b:b + 1]


def _batchnorm_eval(model) -> None:
    """Batch-norm layers keep their (ImageNet) statistics while the rest trains: the pairs go through the
    backbone one by one, and batch statistics of one image would replace them (``train.batchnorm: eval``)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def keypoint_ce_loss(model, batch: Dict[str, Any], cfg: Dict[str, Any] = None) -> Dict[str, torch.Tensor]:
    """The proxy model's loss on a batch of keypoint pairs (``src_img``, ``tgt_img``, ``src_kps``, ``tgt_kps``):
    features of both images (with gradients), the pre-filtered correlation, dense scores, and the cross entropy
    of :func:`dense_ce_loss` against :func:`keypoint_probability_map`, per pair, then the mean over the pairs
    (pairs one by one: images may differ in size; a pair without keypoints adds 0)."""
    if model.training and str(((cfg or {}).get("train") or {}).get("batchnorm", "eval")) == "eval":
        _batchnorm_eval(model)
    losses: List[torch.Tensor] = []
    cells = 0
    for b in range(len(batch["index"])):
        src, tgt = _image(batch["src_img"], b), _image(batch["tgt_img"], b)
        corr = model.correlation(model.features(src), model.features(tgt))
        _, Hs, Ws, Ht, Wt = corr.shape
        prob, mask = keypoint_probability_map(batch["src_kps"][b].cpu().numpy(), batch["tgt_kps"][b].cpu().numpy(),
                                              tuple(src.shape[-2:]), tuple(tgt.shape[-2:]), (Hs, Ws), (Ht, Wt))
        scores = model.scorer.dense(corr)
        losses.append(dense_ce_loss(scores, prob[None].to(corr.device), mask[None].to(corr.device),
                                    model.scorer.logit_scale))
        cells += int(mask.sum())
    return {"loss": torch.stack(losses).mean(),
            "cells": torch.tensor(float(cells), device=losses[0].device)}


# --------------------------------------------------------------------------------------------------------
# recipe


def build_data(spec: Dict[str, Any]):
    """``data.train`` / ``data.val``: a keypoint dataset (``{dataset: pfpascal, root, split, image_size}``; ``image_size:
    null`` keeps each image's size; ``dataset: synthetic`` needs no root)."""
    from ._engine_data import build_keypoint_dataset

    return build_keypoint_dataset(spec)


def _backbone_params(model) -> List[torch.nn.Parameter]:
    return [p for p in model.backbone.parameters() if p.requires_grad]


def param_groups(model, cfg) -> List[Dict[str, Any]]:
    """The scorer at ``optimizer.lr``; the backbone (unless frozen) at ``train.backbone_lr`` (ours: the slides give
    no rates)."""
    groups = [{"params": [p for p in model.scorer.parameters() if p.requires_grad]}]
    bb = _backbone_params(model)
    if bb:
        lr = (cfg.get("train") or {}).get("backbone_lr")
        groups.append({"params": bb, **({"lr": float(lr)} if lr is not None else {})})
    return groups


def trained_parts(model):
    """The scorer, and the backbone when it has weights and is not frozen."""
    return ("scorer",) + (("backbone",) if _backbone_params(model) else ())


RECIPE = Recipe(name="pmnc", default_config="pmnc_pfpascal", loss=keypoint_ce_loss, param_groups=param_groups,
                build_data=build_data, trained_parts=trained_parts)

