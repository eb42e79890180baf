"""PMNC: PatchMatch-based neighbourhood consensus (Lee, DeGol, Fragoso, Sinha, CVPR 2021).

Instead of filtering the whole 4D correlation volume with 4D convolutions (NC-Net), PMNC keeps K matches per
source cell and improves them with PatchMatch: each iteration proposes candidates (the cell's own matches, the
matches of 21 neighbouring source cells, the 3x3 neighbourhood of each own match, optional random samples:
:func:`semcorr_ext.ops.patchmatch_propagate`), cuts the w^4 correlation window around each candidate
(:func:`semcorr_ext.ops.gather_windows4d`), scores it with a small learned 4D conv network and keeps the K best
(:func:`semcorr_ext.ops.patchmatch_select`).

Scoring network (:class:`PMNCScorer`): a conv4d stack (ReLU between layers) whose receptive field is exactly
the window (``window = 1 + sum(k - 1)``), so a window gives one score with no padding. Our default is a 5^4
layer 1 -> 16 followed by two 1^4 layers 16 -> 16 -> 1 (receptive field 5^4, PMNC's window), symmetric in source
and target as NC-Net. Applied densely with "same" zero padding the same stack is a neighbourhood-consensus
network whose output at (i, j, u, v) *equals* the window score of candidate (u, v) at (i, j): this dense form
is the proxy model the scoring function is trained with (dense scoring + cross entropy,
:mod:`semcorr.train.pmnc`) and the dense NC baseline of ``benchmarks/bench_patchmatch.py``.

Each 4D position is scored at most once per image pair: scores are cached across iterations (a volume-sized
buffer), and only valid (de-duplicated) candidates not seen before are gathered
(:func:`semcorr_ext.ops.gather_windows4d_points`) and scored, in chunks.

Readout: the paper's is PatchMatch's own result, the best of the k matches it kept for each source cell
(``readout="search"``, the default). Our addition, ``readout="mutual"``: NC-Net filters its consensus scores with
a second mutual matching before the argmax, and that step is worth much of its accuracy (a target cell that
scores high for many source cells stops winning them all); PMNC keeps every score it computed, so the same
mutual matching can run on the scored positions (unscored ones count as 0) and each source cell takes its best
target cell among them. It is a named option, reported separately, never the default.

The published method and where our defaults come from. PMNC's code was never released and the seed document
is the CVPR talk's slides, so the reference is the paper as those slides give it:

* backbone: ResNet-101 (``backbone="resnet101"``, default), layer 4 at a 25x25 grid (the slides' headline row;
  ``layers=("layer3",)`` is their 50x50 row). Both rows imply 800-pixel inputs (stride 32 x 25 = stride 16 x 50),
  so ResNet backbones resize the longer image side to ``image_size=800`` by default. DAISY / HOG
  (``backbone="daisy"``) are our offline options (no weights to download); they keep the images as given.
* readout: PatchMatch's best match (above). Proxy training with dense scoring and cross entropy against a
  ground-truth probability map: :mod:`semcorr.train.pmnc`.
* Where the slides are silent we chose: 8 PatchMatch iterations, k = 1 kept match per source cell, the 21
  propagation offsets of :data:`semcorr_ext.ops.patchmatch.PMNC_OFFSETS`, no random search, a 5^4 window, the
  scoring stack 5^4 (1 -> 16) then 1^4 (16 -> 16 -> 1), symmetric, and NC-Net's mutual matching of the raw
  correlation before the search (``mutual=True``). The scorer starts from a hand-set consensus filter
  (``init="consensus"``); it is untrained (no published weights exist) and the model says so
  (:meth:`CorrespondenceModel.untrained_parts`) until a checkpoint of ``semcorr train pmnc`` is loaded.
"""
import math
import os
from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbone_factory import fuse_features, is_resnet, make_backbone
from semcorr_ext.ops.patchmatch import PMNC_OFFSETS

from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["PMNCScorer", "PMNC", "PatchMatchResult", "initial_matches"]


class PatchMatchResult(NamedTuple):
    """What :meth:`PMNC.search` found: ``matches`` (B, Hs, Ws, k, 2) the k kept target cells (row, col) of each
    source cell, best first; ``scores`` (B, Hs, Ws, k) theirs; ``num_scored`` how many 4D positions were scored;
    ``scored`` (B, Hs, Ws, Ht, Wt) every score computed (NaN where PatchMatch never looked); ``scored_index`` the
    flat indices of those positions, in the order they were scored."""

    matches: torch.Tensor
    scores: torch.Tensor
    num_scored: int
    scored: torch.Tensor
    scored_index: torch.Tensor


class PMNCScorer(nn.Module):
    """The learned scoring function of PMNC: a 4D conv stack with ReLU between layers (the score itself is the
    last layer's linear output, so the cross-entropy training never sees a dead all-zero score map).

    Args:
        kernel_sizes: odd kernel side of each layer; the receptive field ``1 + sum(k - 1)`` is the window side.
        channels: output channels of each layer (the last must be 1). Input: one channel (the correlation).
        symmetric: add the stack applied with source and target exchanged (NC-Net's symmetric mode).
        init: ``"consensus"`` (default: a hand-set neighbourhood-consensus filter that works untrained: layer 1 =
            normalised 4D Gaussians of 16 widths, the 1^4 layers identity / average) or ``"random"`` (like
            ``nn.Conv3d``).

    ``score_windows(win (M, w, w, w, w)) -> (M,)`` scores windows; ``dense(corr (B, Hs, Ws, Ht, Wt))`` applies
    the same stack to the whole volume with "same" zero padding (equal to the window scores at every position).
    """

    def __init__(self, kernel_sizes: Sequence[int] = (5, 1, 1), channels: Sequence[int] = (16, 16, 1),
                 symmetric: bool = True, init: str = "consensus"):
        super().__init__()
        if len(kernel_sizes) != len(channels) or not kernel_sizes:
            raise ValueError("PMNCScorer: kernel_sizes and channels must be non-empty and of equal length, got %r, %r"
                             % (kernel_sizes, channels))
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError("PMNCScorer: kernel sizes must be odd, got %r" % (kernel_sizes,))
        if channels[-1] != 1:
            raise ValueError("PMNCScorer: the last layer must have 1 channel (one score), got %r" % (channels,))
        self.kernel_sizes, self.channels, self.symmetric = tuple(kernel_sizes), tuple(channels), bool(symmetric)
        self.window = 1 + sum(k - 1 for k in kernel_sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        cin = 1
        for k, c in zip(kernel_sizes, channels):
            self.weights.append(nn.Parameter(torch.empty(c, cin, k, k, k, k)))
            self.biases.append(nn.Parameter(torch.empty(c)))
            cin = c
        #: scale of the scores in the training loss (softmax temperature); not used for matching
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))
        self.reset_parameters(init)

    @torch.no_grad()
    def reset_parameters(self, init: str = "consensus"):
        if init == "random":
            for w, b in zip(self.weights, self.biases):
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                bound = 1 / math.sqrt(w[0].numel())
                nn.init.uniform_(b, -bound, bound)
            return
        if init != "consensus":
            raise ValueError("PMNCScorer: init must be 'consensus' or 'random', got %r" % (init,))
        for li, (w, b) in enumerate(zip(self.weights, self.biases)):
            b.zero_()
            cout, cin, k = w.shape[0], w.shape[1], w.shape[2]
            w.zero_()
            if li == 0:  # Gaussians of increasing width over the window, each summing to 1
                r = torch.arange(k, dtype=torch.float64) - k // 2
                d2 = (r.view(-1, 1, 1, 1) ** 2 + r.view(1, -1, 1, 1) ** 2 + r.view(1, 1, -1, 1) ** 2
                      + r.view(1, 1, 1, -1) ** 2)
                for c in range(cout):
                    sigma = 0.5 + 2.0 * c / max(1, cout - 1)
                    g = torch.exp(-d2 / (2 * sigma * sigma))
                    w[c, 0] = (g / g.sum()).to(w.dtype) / cin
            else:  # identity where channels line up, then the average over inputs for a narrowing layer
                centre = (slice(None), slice(None)) + (k // 2,) * 4
                m = torch.zeros(cout, cin, dtype=w.dtype)
                if cout == cin:
                    m = torch.eye(cout, dtype=w.dtype)
                else:
                    m[:] = 1.0 / cin
                w[centre] = m

    # -------------------------------------------------------------------------------- window scoring
    def _layers(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Layers ``start..`` of the stack with no padding, ReLU between layers: x (M, C, k, k, k, k) -> (M,)."""
        for li in range(start, len(self.weights)):
            w, b = self.weights[li], self.biases[li]
            if w.shape[2] == x.shape[-1]:  # the kernel covers what is left: one GEMM
                x = F.linear(x.flatten(1), w.flatten(1), b).view(x.shape[0], -1, 1, 1, 1, 1)
            else:
                x = ops.conv4d(x, w, b, padding=0)
            if li + 1 < len(self.weights):
                x = F.relu(x)
        return x.view(x.shape[0])

    def _first_layer(self):
        """Layer 1 of the stack and, if symmetric, of the transposed stack (the same layer with source and target
        dims exchanged), as one (C or 2C, 1, k, k, k, k) weight and its bias."""
        w0, b0 = self.weights[0], self.biases[0]
        if not self.symmetric:
            return w0, b0
        return torch.cat([w0, w0.permute(0, 1, 4, 5, 2, 3)]), torch.cat([b0, b0])

    def _after_first(self, h: torch.Tensor) -> torch.Tensor:
        """The layers after the first on the first layer's outputs of windows it covers, (M, C or 2C) -> (M,)."""
        h = F.relu(h) if len(self.weights) > 1 else h
        h = h.view(h.shape[0], 2 if self.symmetric else 1, -1, 1, 1, 1, 1)
        out = self._layers(h[:, 0], start=1)
        return out + self._layers(h[:, 1], start=1) if self.symmetric else out

    def score_windows(self, win: torch.Tensor) -> torch.Tensor:
        """Scores of windows (M, w, w, w, w) (from :func:`semcorr_ext.ops.gather_windows4d`) -> (M,)."""
        M, w = win.shape[0], win.shape[-1]
        if w != self.window:
            raise ValueError("PMNCScorer: windows must be %d^4 (the receptive field), got %d^4" % (self.window, w))
        x = win.reshape(M, 1, w, w, w, w)
        if self.weights[0].shape[2] == w:  # layer 1 of both directions in one GEMM
            w0, b0 = self._first_layer()
            return self._after_first(F.linear(x.flatten(1), w0.flatten(1), b0))
        out = self._layers(x)
        if self.symmetric:
            out = out + self._layers(x.permute(0, 1, 4, 5, 2, 3))
        return out

    def score_points(self, corr: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Scores of the windows of ``corr`` (B, Hs, Ws, Ht, Wt) centred at ``points`` (M, 5) (b, i, j, u, v) ->
        (M,). When layer 1 covers the window (the default stack) the windows are never materialised: layer 1 is
        :func:`semcorr_ext.ops.gather_windows4d_linear`."""
        if self.weights[0].shape[2] != self.window:
            return self.score_windows(ops.gather_windows4d_points(corr, points, self.window))
        w0, b0 = self._first_layer()
        return self._after_first(ops.gather_windows4d_linear(corr, points, w0.squeeze(1), b0))

    # -------------------------------------------------------------------------------- dense (proxy) scoring
    def dense(self, corr: torch.Tensor) -> torch.Tensor:
        """The stack on the whole volume (B, Hs, Ws, Ht, Wt) with "same" zero padding -> (B, Hs, Ws, Ht, Wt)."""

        def stack(x):
            x = x.unsqueeze(1)
            for li, (w, b) in enumerate(zip(self.weights, self.biases)):
                x = ops.conv4d(x, w, b)
                if li + 1 < len(self.weights):
                    x = F.relu(x)
            return x.squeeze(1)

        out = stack(corr)
        if self.symmetric:
            out = out + stack(corr.permute(0, 3, 4, 1, 2)).permute(0, 3, 4, 1, 2)
        return out


def initial_matches(corr: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The k best target cells of each source cell of a volume (B, Hs, Ws, Ht, Wt) -> (B, Hs, Ws, k, 2) (row, col);
    ties to the lower flat index."""
    B, Hs, Ws, Ht, Wt = corr.shape
    flat = corr.reshape(B, Hs, Ws, Ht * Wt)
    if k == 1:
        idx = flat.argmax(-1, keepdim=True)
    else:
        idx = flat.topk(k, dim=-1, sorted=True).indices
    return torch.stack([idx // Wt, idx % Wt], -1)


@register_model("pmnc")
class PMNC(CorrespondenceModel):
    """PatchMatch neighbourhood consensus.

    Args:
        backbone: ``"resnet101"`` (default, the paper; layer 4 unless ``layers=`` says otherwise), ``"resnet50"``,
            ``"daisy"`` / ``"hog"`` (ours: hand-crafted, offline, fast on CPU), or an ``nn.Module`` mapping images
            to a (B, C, h, w) map (or a list of maps).
        weights: ResNet weights: ``"auto"`` (ImageNet if in the torch hub cache, else random with a warning),
            ``"imagenet"``, ``None`` or a state-dict path. A checkpoint holding backbone weights replaces them.
        image_size: resize both images so that the longer side is this many pixels before the backbone.
            ``"paper"`` (default): 800 for ResNet backbones (the paper's 25x25 layer-4 / 50x50 layer-3 grids),
            as given for DAISY / HOG / modules; ``None``: as given.
        iterations: PatchMatch iterations (the slides do not say; ours 8).
        k: matches kept per source cell (ours 1).
        offsets: source-grid propagation offsets (default: PMNC's 21, :data:`semcorr_ext.ops.patchmatch.PMNC_OFFSETS`).
        random_samples, radius, seed: random-search candidates per own match, their radius (target cells) and the
            hash seed (iteration t uses ``iteration=t``). Default 0 (propagation and local refinement only).
        kernel_sizes, channels, symmetric, init: the scoring network (:class:`PMNCScorer`).
        mutual: filter the correlation with NC-Net's soft mutual matching first (default True).
        readout: ``"search"`` (default, the paper: the best of the k matches PatchMatch kept) or ``"mutual"``
            (ours: NC-Net's second mutual matching applied to every position PatchMatch scored, then the best per
            source cell, :meth:`mutual_readout`).
        checkpoint: a scorer-only file (``{"state_dict": {"scorer.*": ...}}``, what earlier versions of
            ``semcorr train pmnc`` wrote) or a state dict of this module; loaded strictly (:meth:`load_checkpoint`).
            A ``semcorr train pmnc`` checkpoint (training-engine layout) is rebuilt by
            ``build_model("pmnc", checkpoint=PATH)`` (:mod:`semcorr.models.trained`).
        max_window_floats: one chunk of scored points is ``max_window_floats / window^4`` points (the windows it would
            take if they were materialised; with the default stack they are not, layer 1 is fused with the gather).
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` (e.g. ``stride=`` for DAISY,
            ``layers=`` for ResNets).

    Returns :class:`Matches` with ``confidence`` = the readout's score of the match and ``extras``: ``"index"``
    (B, Hs, Ws) flat target cell, ``"matches"`` (B, Hs, Ws, k, 2) the k matches PatchMatch kept, ``"scores"``
    (B, Hs, Ws, k), ``"tgt_grid"``, ``"num_scored"`` (4D positions scored) and ``"dense_points"`` (what dense NC
    scores).
    """

    #: the paper's input size for ResNet backbones (longer side, pixels)
    PAPER_IMAGE_SIZE = 800

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto",
                 image_size: Union[str, int, None] = "paper", iterations: int = 8, k: int = 1,
                 offsets: Optional[Sequence[Sequence[int]]] = None, random_samples: int = 0, radius: int = 0,
                 seed: int = 0, kernel_sizes: Sequence[int] = (5, 1, 1), channels: Sequence[int] = (16, 16, 1),
                 symmetric: bool = True, init: str = "consensus", mutual: bool = True, readout: str = "search",
                 checkpoint=None, max_window_floats: int = 1 << 23, stride: Optional[int] = None,
                 **backbone_kwargs):
        super().__init__()
        if k < 1 or iterations < 0:
            raise ValueError("PMNC: need k >= 1 and iterations >= 0, got k=%d, iterations=%d" % (k, iterations))
        if readout not in ("mutual", "search"):
            raise ValueError("PMNC: readout must be 'mutual' or 'search', got %r" % (readout,))
        #: the backbone's name (None for a module): a scorer checkpoint records the one it was trained on
        self.backbone_kind = backbone if isinstance(backbone, str) else None
        if image_size == "paper":
            image_size = self.PAPER_IMAGE_SIZE if is_resnet(backbone) else None
        elif image_size is not None and (isinstance(image_size, str) or int(image_size) < 1):
            raise ValueError("PMNC: image_size must be 'paper', None or a positive int, got %r" % (image_size,))
        self.image_size = None if image_size is None else int(image_size)
        net = make_backbone(backbone, "PMNC", weights, default_layers=("layer4",), stride=stride, **backbone_kwargs)
        self.set_backbone(net, net.label())
        self.scorer = PMNCScorer(kernel_sizes, channels, symmetric, init)
        # no published scorer weights exist: hand-set or random until a checkpoint of `semcorr train pmnc` loads
        self.mark_untrained("scorer")
        self.iterations, self.k = int(iterations), int(k)
        self.random_samples, self.radius, self.seed = int(random_samples), int(radius), int(seed)
        self.mutual = bool(mutual)
        self.readout = readout
        self.max_window_floats = int(max_window_floats)
        self.register_buffer("offsets", torch.tensor(PMNC_OFFSETS if offsets is None else offsets,
                                                     dtype=torch.int64).view(-1, 2), persistent=False)
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        self.eval()

    def load_checkpoint(self, checkpoint) -> None:
        """Load a checkpoint strictly: a path (read with :func:`semcorr.checkpoints.load_checkpoint`, no arbitrary
        unpickling) or a dict; ``{"state_dict": ...}`` is unwrapped and a ``module.`` prefix stripped.

        The scorer's keys (``scorer.*``) must all be there with the model's shapes (a checkpoint of another
        scorer layout, or of another model, raises :class:`semcorr.checkpoints.CheckpointError` naming the keys).
        Backbone keys are optional as a whole (a scorer-only file does not hold the backbone), but when any is
        present all must be. A checkpoint that records the backbone its scorer was trained on (``"backbone"``,
        written by earlier versions of ``semcorr train pmnc``) must name this model's backbone: a
        scorer trained on DAISY correlations is not one for ResNet correlations. Marks the loaded parts trained."""
        from semcorr.checkpoints import CheckpointError, check_keys, load_checkpoint, unwrap_state_dict

        obj = load_checkpoint(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
        sd = unwrap_state_dict(obj)
        what = "PMNC %s" % (os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "state dict")
        trained_on = obj.get("backbone") if isinstance(obj, dict) else None
        if isinstance(trained_on, str) and self.backbone_kind is not None and trained_on != self.backbone_kind:
            raise CheckpointError("%s holds a scorer trained on %s features, this model uses backbone=%r; build it "
                                  "with backbone=%r" % (what, trained_on, self.backbone_kind, trained_on))
        expected = self.state_dict()
        has_backbone = any(k.startswith("backbone.") for k in sd)
        check_keys(expected, sd, what, allow_missing=None if has_backbone else ("backbone.",))
        # check_keys has accepted the keys; without backbone keys the backbone keeps its current weights
        self.load_state_dict(sd, strict=has_backbone or not any(k.startswith("backbone.") for k in expected))
        self.mark_trained("scorer", *(("backbone",) if has_backbone else ()))

    @property
    def window(self) -> int:
        return self.scorer.window

    def _resize(self, img: torch.Tensor) -> torch.Tensor:
        """Images with the longer side at ``image_size`` (bilinear; unchanged when ``image_size`` is None). The
        match field is in normalised coordinates, so it is the same on the images as given."""
        size = self._resized_size(img)
        if size == tuple(img.shape[-2:]):
            return img
        return F.interpolate(img, size=size, mode="bilinear", align_corners=False)

    def _resized_size(self, img: torch.Tensor):
        h, w = int(img.shape[-2]), int(img.shape[-1])
        if self.image_size is None:
            return h, w
        s = float(self.image_size) / max(h, w)
        return max(1, int(round(h * s))), max(1, int(round(w * s)))

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(self._resize(img)))

    def correlation(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        """Cosine correlation (B, Hs, Ws, Ht, Wt), clamped at 0 and mutual-matched (NC-Net's pre-filtering)."""
        corr = ops.corr4d(fs, ft, normalize=True, relu=True)
        return ops.mutual_matching(corr) if self.mutual else corr

    def _score_new(self, corr, cand, need, flat_idx, cache):
        """Score the candidates marked in `need` (B, Hs, Ws, N) and write them into the flat `cache`; returns their
        flat indices."""
        B, Hs, Ws, N = need.shape
        sel = need.reshape(-1).nonzero().squeeze(1)  # (b, i, j, n) of each window to score
        pix = sel // N
        uv = cand.reshape(-1, 2).index_select(0, sel)
        points = torch.stack([pix // (Hs * Ws), (pix // Ws) % Hs, pix % Ws, uv[:, 0], uv[:, 1]], 1)
        where = flat_idx.reshape(-1).index_select(0, sel)
        per = max(1, self.max_window_floats // self.window ** 4)
        for a in range(0, sel.numel(), per):  # only the windows not scored yet
            cache[where[a:a + per]] = self.scorer.score_points(corr, points[a:a + per]).to(cache.dtype)
        return where

    def search(self, corr: torch.Tensor, init: Optional[torch.Tensor] = None) -> PatchMatchResult:
        """PatchMatch on a (pre-filtered) volume (B, Hs, Ws, Ht, Wt) -> :class:`PatchMatchResult`."""
        B, Hs, Ws, Ht, Wt = corr.shape
        matches = initial_matches(corr, self.k) if init is None else init
        pix = torch.arange(B * Hs * Ws, device=corr.device).view(B, Hs, Ws, 1)
        cache = torch.full((B * Hs * Ws * Ht * Wt,), float("nan"), dtype=corr.dtype, device=corr.device)
        scored = []
        scores = None
        offsets = self.offsets.to(corr.device)
        for t in range(max(1, self.iterations)):
            if self.iterations == 0:  # score the initial matches only
                cand = matches
                valid = torch.ones(matches.shape[:4], dtype=torch.bool, device=corr.device)
            else:
                cand, valid = ops.patchmatch_propagate(matches, offsets, target_size=(Ht, Wt),
                                                       random_samples=self.random_samples, radius=self.radius,
                                                       seed=self.seed, iteration=t)
            flat_idx = (pix * Ht + cand[..., 0]) * Wt + cand[..., 1]
            need = valid & torch.isnan(cache[flat_idx])
            scored.append(self._score_new(corr, cand, need, flat_idx, cache))
            cand_scores = cache[flat_idx]
            matches, scores = ops.patchmatch_select(cand, torch.where(valid, cand_scores, 0), valid, self.k)
        index = torch.cat(scored)
        return PatchMatchResult(matches, scores, index.numel(), cache.view(B, Hs, Ws, Ht, Wt), index)

    @staticmethod
    def mutual_readout(scored: torch.Tensor, index: Optional[torch.Tensor] = None, eps: float = 1e-5):
        """NC-Net's second mutual matching on the positions PatchMatch scored, read out per source cell.

        ``scored`` (B, Hs, Ws, Ht, Wt) with NaN where not scored; ``index`` the flat indices of the scored
        positions if known (else found from the NaNs). Each score ``s`` (clamped at 0) becomes
        ``s * s / (best over the source's targets + eps) * s / (best over the target's sources + eps)``
        (:func:`semcorr_ext.ops.mutual_matching` with unscored positions at 0, without a volume-sized pass), so a
        target cell that scores high for many source cells (a repeated texture, a hub) no longer wins them all.
        Each source cell keeps its best scored target cell (ties: the lower index; a source cell with nothing
        scored gets target 0 and score 0).
        Returns (flat target index (B, Hs, Ws), its mutual score (B, Hs, Ws)).
        """
        B, Hs, Ws, Ht, Wt = scored.shape
        flat = scored.reshape(-1)
        if index is None:
            index = (~flat.isnan()).nonzero().squeeze(1)
        s = flat[index].clamp_min(0)
        T = Ht * Wt
        src = index // T  # (b, i, j)
        tgt = index // (Hs * Ws * T) * T + index % T  # (b, u, v)
        best_t = s.new_zeros(B * Hs * Ws).scatter_reduce_(0, src, s, "amax")
        best_s = s.new_zeros(B * T).scatter_reduce_(0, tgt, s, "amax")
        m = s * (s / (best_t[src] + eps)) * (s / (best_s[tgt] + eps))
        best = m.new_zeros(B * Hs * Ws).scatter_reduce_(0, src, m, "amax")
        pick = torch.where(m == best[src], index % T, T)
        idx = torch.full_like(best, T, dtype=torch.int64).scatter_reduce_(0, src, pick, "amin")
        return idx.masked_fill_(idx == T, 0).view(B, Hs, Ws), best.view(B, Hs, Ws)

    def match_volume(self, corr: torch.Tensor, readout: Optional[str] = None):
        """Search a (pre-filtered) volume (B, Hs, Ws, Ht, Wt) and read it out (``readout``: default the model's):
        (flat target index (B, Hs, Ws), confidence (B, Hs, Ws), :class:`PatchMatchResult`)."""
        readout = readout or self.readout
        if readout not in ("mutual", "search"):
            raise ValueError("PMNC: readout must be 'mutual' or 'search', got %r" % (readout,))
        res = self.search(corr)
        if readout == "mutual":
            idx, confidence = self.mutual_readout(res.scored, res.scored_index)
        else:
            idx, confidence = res.matches[..., 0, 0] * corr.shape[4] + res.matches[..., 0, 1], res.scores[..., 0]
        return idx, confidence, res

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        fs, ft = self.features(src_img), self.features(tgt_img)
        corr = self.correlation(fs, ft)
        B, Hs, Ws, Ht, Wt = corr.shape
        idx, confidence, res = self.match_volume(corr)
        # cell centres of the grid over the image the backbone saw (normalised: the same place on the input)
        tgt_centres = flow.grid_coords(Ht, Wt, self._resized_size(tgt_img), dtype=fs.dtype, device=fs.device)
        field = tgt_centres.reshape(Ht * Wt, 2)[idx]
        return Matches(field=field, confidence=confidence, src_size=tuple(src_img.shape[-2:]),
                       tgt_size=tuple(tgt_img.shape[-2:]),
                       extras={"index": idx, "matches": res.matches, "scores": res.scores, "tgt_grid": (Ht, Wt),
                               "num_scored": res.num_scored, "dense_points": B * Hs * Ws * Ht * Wt})
