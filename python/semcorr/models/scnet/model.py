"""SCNet-A / SCNet-AG / SCNet-AG+ (Han et al., ICCV 2017) as the released MatConvNet code builds them.

Network (``SCNet_A_init.m``, ``SCNet_AG_init.m``, ``SCNet_AGplus_init.m``), siamese with shared weights:

* input ``(img * 255 - image_mean) ./ image_std`` (the training data's mean / std images);
* VGG-16 up to and including pool4 (stride 16), frozen (learning rate 0 for its 20 parameters);
* ROI max pooling 7x7 (MatConvNet ``ROIPooling``, transform 1/16: ``torchvision.ops.roi_pool`` on 0-based
  boxes computes the same bins);
* one FC ``cnv_fc_1``: a 7x7x512x2048 convolution (with bias) on the pooled map, then L2 normalisation
  ``x / sqrt(sum x^2 + 1e-10)``;
* similarity ``A = phi(r) . phi(r')``; SCNet-A: ``relu(A)``; SCNet-AG: ``A * G(A)`` (no ReLU in the released
  AG graph); SCNet-AG+: ``relu(A) * G(relu(A_g))`` with ``A_g`` from a second FC ``cnv_fc_2`` (same layout,
  initialised from ``cnv_fc_1``); ``G`` is the released Hough vote (:mod:`.geometry`).

Training (exposed for ``semcorr train scnet``): :func:`trainable_parameters` (A/AG: ``cnv_fc_1``; AG+: only
``cnv_fc_2``, the appearance FC frozen), :func:`published_optimizer` (SGD, lr 1e-4, momentum 0.9, weight
decay 0.01, batch of one pair, 200 epochs) with :func:`reset_momentum` at every epoch start, and the loss
:meth:`SCNet.loss` / :func:`.loss.scnet_loss`.

Where the paper and the released code disagree we follow the code: the kernel K is not a plain offset bin
but the box-frame Hough space of ``vl_GeoVote`` with scale and aspect, votes are thresholded at 0.4, 0.01 is
added, the AG appearance term has no ReLU, and AG+'s appearance FC is frozen.
"""
import os
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...backbone_factory import is_resnet, make_backbone, resnet_depth
from ...backbones import IMAGENET_MEAN, IMAGENET_STD, imagenet_cached
from ...checkpoints import CheckpointError, check_keys
from .. import register_model
from ..base import CorrespondenceModel, Matches
from .dense_flow import flow_from_region_matches
from .geometry import hough_bins, hough_vote_scores
from .loss import scnet_loss
from .matconvnet import VGG_CONVS, infer_variant, load_matconvnet, read_matconvnet_params
from .proposals import PROPOSALS, felzenszwalb_boxes, randomized_prim_boxes, rp_alpha_is_published, sliding_window_boxes

__all__ = ["SCNet", "VGG16Pool4", "trainable_parameters", "published_optimizer", "reset_momentum", "VARIANTS",
           "BACKBONES"]

VARIANTS = ("A", "AG", "AG+")
#: ``"vgg16"`` is the published backbone; the others are our substitutes (named options)
BACKBONES = ("vgg16", "resnet101", "resnet50", "daisy")
L2_EPS = 1e-10  # dagnn.L2Norm's param
POOL = 7


def _vgg16_cache_path() -> str:
    import torchvision.models as tvm

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(tvm.VGG16_Weights.IMAGENET1K_V1.url))


class VGG16Pool4(nn.Module):
    """torchvision's ``vgg16().features[:24]`` (conv1_1 .. pool4, stride 16, 512 channels), on an already
    normalised input. ``weights``: None (random), ``"imagenet"`` (torchvision's VGG-16 checkpoint, read from
    the torch hub cache only) or a path to a torchvision VGG-16 state dict."""

    stride, channels = 16, 512

    def __init__(self, weights=None):
        super().__init__()
        from torchvision.models import vgg

        # vgg16().features without building the 120M-parameter classifier we never use
        self.features = vgg.make_layers(vgg.cfgs["D"])[:24]
        if weights is not None:
            path = _vgg16_cache_path() if weights == "imagenet" else os.fspath(weights)
            if not os.path.isfile(path):
                raise FileNotFoundError("VGG-16 weights %s are missing; semcorr never downloads weights. Put "
                                        "torchvision's vgg16 ImageNet checkpoint there, or pass weights=<path>"
                                        % path)
            sd = torch.load(path, map_location="cpu", weights_only=True)
            sd = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
            sd = {k: v for k, v in sd.items() if int(k.split(".")[0]) < 24}
            check_keys(self.features.state_dict(), sd, "VGG-16 (%s)" % path)
            self.features.load_state_dict(sd)

    def forward(self, x):
        return self.features(x)


class _Substitute(nn.Module):
    """Our backbone substitutes (ResNet layer3, stride 16; DAISY, stride 8) on [0, 1] images."""

    def __init__(self, name: str, weights):
        super().__init__()
        self.net = make_backbone(name, "SCNet", weights, default_layers=("layer3",)).module
        self.stride, self.channels = (16, 1024) if is_resnet(name) else (self.net.stride, self.net.channels)

    def forward(self, img01):
        f = self.net(img01)
        return f[0] if isinstance(f, (list, tuple)) else f


def _l2norm(x):
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + L2_EPS)


@register_model("scnet")
class SCNet(CorrespondenceModel):
    """SCNet-A / AG / AG+ on region proposals, the released network by default.

    Args:
        variant: ``"AG+"`` (default), ``"AG"`` or ``"A"``; with a checkpoint and no variant, the file's.
        checkpoint: SCNet's released MatConvNet ``.mat`` (e.g. ``SCNet-AGplus.mat``): loads VGG-16 and the FCs.
        weights: VGG-16 weights when no checkpoint is given: ``"auto"`` (torchvision's ImageNet checkpoint if it
            is in the torch hub cache, else random), ``None``, ``"imagenet"`` or a path.
        backbone: ``"vgg16"`` (published) or our substitutes ``"resnet101"``, ``"resnet50"``, ``"daisy"``.
        proposals: ``"rp"`` (published pipeline, :func:`.proposals.randomized_prim_boxes`), or our substitutes
            ``"sliding"``, ``"felzenszwalb"``; boxes can also be passed to :meth:`forward` / :meth:`scores`.
        n_proposals: RP boxes per image (1000: the released PCK evaluation; 500 for training).
        rp_alpha: RP's size-term table (path to ``alpha_voc07.dat``), see :mod:`.proposals`.
        image_mean, image_std: the input normalisation in 0-255 units, (3,) or (H, W, 3) (the released code uses
            its training set's per-pixel mean / std images, which were not published: default ImageNet's
            per-channel mean / std x 255).
        vote_grad: ``"published"`` (the released backward of the Hough vote) or ``"exact"``.
        fc_dim: FC output size (2048 published; smaller values only for tests).
        sd_filter: one-to-one filtering + SD filtering of the flow as released (default), or ``False`` (our
            option, faster): every pixel keeps the position its best region match paints.
    """

    def __init__(self, variant: Optional[str] = None, checkpoint=None, weights="auto", backbone: str = "vgg16",
                 proposals: str = "rp", n_proposals: int = 1000, rp_alpha=None, image_mean=None, image_std=None,
                 vote_grad: str = "published", fc_dim: int = 2048, sd_filter: bool = True):
        super().__init__()
        if checkpoint is not None and backbone != "vgg16":
            raise ValueError("checkpoint (SCNet's released .mat) needs backbone='vgg16', got %r" % (backbone,))
        raw = None
        if checkpoint is not None:
            raw, layer_types = read_matconvnet_params(checkpoint, with_layer_types=True)
            variant = infer_variant(raw, layer_types) if variant is None else variant
        variant = "AG+" if variant is None else variant
        if variant not in VARIANTS:
            raise ValueError("variant must be one of %s, got %r" % (", ".join(VARIANTS), variant))
        if backbone not in BACKBONES:
            raise ValueError("backbone must be one of %s, got %r" % (", ".join(BACKBONES), backbone))
        if proposals not in PROPOSALS:
            raise ValueError("proposals must be one of %s (or pass boxes), got %r" % (", ".join(PROPOSALS), proposals))
        if vote_grad not in ("published", "exact"):
            raise ValueError("vote_grad must be 'published' or 'exact', got %r" % (vote_grad,))
        self.variant, self.backbone_name, self.proposals = variant, backbone, proposals
        self.n_proposals, self.rp_alpha, self.vote_grad = int(n_proposals), rp_alpha, vote_grad
        self.sd_filter = bool(sd_filter)
        mean = np.asarray(IMAGENET_MEAN if image_mean is None else image_mean, dtype=np.float32) * (
            255.0 if image_mean is None else 1.0)
        std = np.asarray(IMAGENET_STD if image_std is None else image_std, dtype=np.float32) * (
            255.0 if image_std is None else 1.0)
        self.register_buffer("image_mean", self._as_chw(mean, "image_mean"), persistent=False)
        self.register_buffer("image_std", self._as_chw(std, "image_std"), persistent=False)

        if backbone == "vgg16":
            vgg_w = weights
            if weights == "auto":
                vgg_w = "imagenet" if (checkpoint is None and os.path.isfile(_vgg16_cache_path())) else None
            self.backbone = VGG16Pool4(vgg_w)
            backbone_trained = vgg_w is not None
        else:
            rw = weights
            if is_resnet(backbone) and weights == "auto":  # no warning: the UNTRAINED line below says it
                rw = "imagenet" if imagenet_cached(resnet_depth(backbone)) else None
            self.backbone = _Substitute(backbone, rw)
            backbone_trained = backbone == "daisy" or rw is not None
        C = self.backbone.channels
        # skip torch's default init of the 51M-weight FCs: _init_fc sets SCNet's own
        self.fc_a = nn.utils.skip_init(nn.Linear, C * POOL * POOL, fc_dim)  # cnv_fc_1
        self.fc_g = nn.utils.skip_init(nn.Linear, C * POOL * POOL, fc_dim) if variant == "AG+" else None  # cnv_fc_2
        self._init_fc()
        if not backbone_trained:
            self.mark_untrained("backbone")
        self.mark_untrained(*(["appearance FC", "geometry FC"] if variant == "AG+" else ["appearance FC"]))
        if checkpoint is not None:
            self.load_matconvnet(checkpoint, raw)
        self.eval()

    @staticmethod
    def _as_chw(a: np.ndarray, name: str) -> torch.Tensor:
        if a.shape == (3,):
            return torch.from_numpy(a).view(1, 3, 1, 1)
        if a.ndim == 3 and a.shape[2] == 3:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
        raise ValueError("%s must be (3,) or (H, W, 3) in 0-255 units, got shape %s" % (name, a.shape))

    def _init_fc(self):
        # SCNet_A_init: weights 0.01 * randn, biases 0; AG+ starts cnv_fc_2 from cnv_fc_1's values
        with torch.no_grad():
            self.fc_a.weight.normal_(0, 0.01)
            self.fc_a.bias.zero_()
            if self.fc_g is not None:
                self.fc_g.load_state_dict(self.fc_a.state_dict())

    # ---- weights ---------------------------------------------------------------------------------------------
    def load_matconvnet(self, path, raw=None) -> None:
        """Load SCNet's released MatConvNet ``.mat`` (see :mod:`.matconvnet`); errors name missing/extra params."""
        if self.backbone_name != "vgg16":
            raise CheckpointError("SCNet's released weights hold VGG-16; this model's backbone is %r"
                                  % self.backbone_name)
        params = load_matconvnet(path, self.variant, self.fc_a.out_features, POOL, raw=raw)
        with torch.no_grad():
            for name, idx in VGG_CONVS:
                self.backbone.features[idx].weight.copy_(params[name + "f"])
                self.backbone.features[idx].bias.copy_(params[name + "b"])
            for fc, key in ((self.fc_a, "cnv_fc_1"), (self.fc_g, "cnv_fc_2")):
                if fc is not None:
                    fc.weight.copy_(params[key + "f"].reshape(fc.out_features, -1))
                    fc.bias.copy_(params[key + "b"])
        self.mark_trained("backbone", "appearance FC", "geometry FC")

    # ---- pipeline --------------------------------------------------------------------------------------------
    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """The released input: ``(img * 255 - image_mean) / image_std``."""
        mean, std = self.image_mean.to(img), self.image_std.to(img)
        if mean.shape[-2:] != (1, 1) and mean.shape[-2:] != img.shape[-2:]:
            raise ValueError("image_mean is a %s image but the input is %s" % (tuple(mean.shape[-2:]),
                                                                            tuple(img.shape[-2:])))
        return (img * 255.0 - mean) / std

    def feature_map(self, img: torch.Tensor) -> torch.Tensor:
        if self.backbone_name == "vgg16":
            return self.backbone(self.normalize(img))
        return self.backbone(img)

    def region_boxes(self, img: torch.Tensor) -> torch.Tensor:
        """Proposals of one image (1, 3, H, W): (R, 4) 0-based (x0, y0, x1, y1)."""
        H, W = img.shape[-2:]
        np_img = img[0].permute(1, 2, 0).detach().cpu().numpy()
        if self.proposals == "rp":
            boxes = randomized_prim_boxes(np_img, self.n_proposals, alpha=self.rp_alpha)
        elif self.proposals == "felzenszwalb":
            boxes = felzenszwalb_boxes(np_img)
        else:
            boxes = sliding_window_boxes(H, W)
        return boxes.to(img.device)

    def region_features(self, img: torch.Tensor, boxes: torch.Tensor):
        """L2-normalised FC features of the boxes: appearance (R, D) and, for AG+, geometry (R, D)."""
        from torchvision.ops import roi_pool

        fmap = self.feature_map(img)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1).to(fmap)
        pooled = roi_pool(fmap, rois, output_size=POOL, spatial_scale=1.0 / self.backbone.stride).flatten(1)
        fa = _l2norm(self.fc_a(pooled))
        return fa, (_l2norm(self.fc_g(pooled)) if self.fc_g is not None else None)

    def score_terms(self, src_img, tgt_img, src_boxes, tgt_boxes):
        """The released graph's outputs for one pair: ``A_out`` (Ns, Nt) and ``G_out`` (None for SCNet-A)."""
        for name, b in (("src_boxes", src_boxes), ("tgt_boxes", tgt_boxes)):
            if b.dim() != 2 or b.shape[1] != 4 or len(b) == 0:
                raise ValueError("%s must be a non-empty (R, 4) tensor of (x0, y0, x1, y1), got %s"
                                 % (name, tuple(b.shape)))
        fs, gs = self.region_features(src_img, src_boxes)
        ft, gt = self.region_features(tgt_img, tgt_boxes)
        dot = fs @ ft.t()
        if self.variant == "A":
            return F.relu(dot), None
        bins, nbins = hough_bins(src_boxes, tgt_boxes, src_img.shape[-2:], tgt_img.shape[-2:])
        bins = bins.to(dot.device)
        if self.variant == "AG":
            return dot, hough_vote_scores(dot, bins, nbins, self.vote_grad)
        return F.relu(dot), hough_vote_scores(F.relu(gs @ gt.t()), bins, nbins, self.vote_grad)

    def scores(self, src_img, tgt_img, src_boxes, tgt_boxes) -> torch.Tensor:
        """The match scores z (Ns, Nt) of one pair (``A_out`` for SCNet-A, ``AG_out`` otherwise)."""
        A, G = self.score_terms(src_img, tgt_img, src_boxes, tgt_boxes)
        return A if G is None else A * G

    def loss(self, src_img, tgt_img, src_boxes, tgt_boxes, iou, active=None) -> torch.Tensor:
        """The released training objective of one pair (batch of one, as ``SCNet_train*.m``): the hinge loss
        :func:`.loss.scnet_loss` of :meth:`scores` against the IoU ground truth (``1 - IoU2GT``, e.g. from
        :func:`.loss.region_iou`) of the ``active`` source proposals."""
        return scnet_loss(self.scores(src_img, tgt_img, src_boxes, tgt_boxes), iou, active)

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor,
                src_boxes: Optional[Sequence[torch.Tensor]] = None,
                tgt_boxes: Optional[Sequence[torch.Tensor]] = None) -> Matches:
        """Per-pixel flow of each pair (the released dense-flow formation, :mod:`.dense_flow`). Boxes: one
        (R, 4) tensor per pair, else the model's proposals."""
        self.check_images(src_img, tgt_img)
        src_hw, tgt_hw = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])
        fields, confs = [], []
        for b in range(src_img.shape[0]):
            s, t = src_img[b:b + 1], tgt_img[b:b + 1]
            sb = self.region_boxes(s) if src_boxes is None else src_boxes[b].to(s.device)
            tb = self.region_boxes(t) if tgt_boxes is None else tgt_boxes[b].to(t.device)
            z = self.scores(s, t, sb, tb)
            guide = self.normalize(s)[0].permute(1, 2, 0).detach().cpu().double().numpy()
            flow, conf = flow_from_region_matches(z.detach().cpu().double().numpy(), sb.cpu().numpy(),
                                                  tb.cpu().numpy(), guide, tgt_hw, sd=self.sd_filter)
            fields.append(torch.from_numpy(flow))
            confs.append(torch.from_numpy(conf))
        from semcorr_ext import flow as sflow

        field = sflow.normalize_coords(torch.stack(fields).to(src_img), tgt_hw)
        extras = {"variant": self.variant}
        if self.proposals == "rp" and src_boxes is None and not rp_alpha_is_published(self.rp_alpha):
            extras["note"] = "RP proposals with the substitute size term (pass rp_alpha for RP's table)"
        return Matches(field=field, confidence=torch.stack(confs).to(src_img), src_size=src_hw, tgt_size=tgt_hw,
                       extras=extras)


    @torch.no_grad()
    def match(self, src_img: torch.Tensor, tgt_img: torch.Tensor, src_boxes=None, tgt_boxes=None) -> Matches:
        """:meth:`forward` in eval mode without gradients on the model's device (boxes optional, as there)."""
        was_training = self.training
        self.eval()
        try:
            dev = self.device
            move = (lambda bs: None if bs is None else [b.to(dev) for b in bs])  # noqa: E731
            return self.forward(src_img.to(dev), tgt_img.to(dev), move(src_boxes), move(tgt_boxes))
        finally:
            self.train(was_training)


def trainable_parameters(model: SCNet):
    """The parameters the released scripts train: A/AG ``cnv_fc_1``; AG+ only ``cnv_fc_2`` (VGG-16 and the
    appearance FC have learning rate 0). Sets ``requires_grad`` accordingly and returns the list."""
    for p in model.parameters():
        p.requires_grad_(False)
    fc = model.fc_g if model.variant == "AG+" else model.fc_a
    params = list(fc.parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def published_optimizer(model: SCNet, lr: float = 1e-4) -> torch.optim.Optimizer:
    """SGD as ``SCNet_train*.m`` (MatConvNet's update equals torch's SGD with momentum 0.9 and L2 weight decay
    0.01 on the trainable FC's weight and bias)."""
    return torch.optim.SGD(trainable_parameters(model), lr=lr, momentum=0.9, weight_decay=0.01)


def reset_momentum(optimizer: torch.optim.Optimizer) -> None:
    """MatConvNet's ``process_epoch`` starts every training epoch with zero momentum: call this at each epoch's
    start to train as the released scripts do."""
    optimizer.state.clear()
