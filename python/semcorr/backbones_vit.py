"""DINOv2 vision transformers (Oquab et al. 2023) as dense feature extractors, built with ``timm``.

:class:`DINOv2Features` maps (B, 3, H, W) RGB images in [0, 1] to a list of (B, C, h, w) patch-token maps
(``h = H // 14``, ``w = W // 14``) taken from chosen transformer blocks, with either facet the published
DINO-based matchers use: ``"token"`` (the block's output tokens, before the final LayerNorm) or ``"key"``
(the keys of that block's attention, heads concatenated).

Names (:data:`DINOV2_MODELS`): ``dinov2_vits14``, ``dinov2_vitb14``, ``dinov2_vitl14``, ``dinov2_vitg14`` and the
register variants ``dinov2_vits14_reg`` ... — the torch.hub names of facebookresearch/dinov2.

Weights are never downloaded. ``weights=PATH`` loads a file in the layout the official release writes
(``dinov2_vitb14_pretrain.pth``: ``cls_token``, ``pos_embed`` (1, 1 + 37*37, C), ``mask_token``,
``register_tokens``, ``patch_embed.proj.*``, ``blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,
ls2.gamma}.*``, ``norm.*``; ViT-G's ``mlp.w12`` / ``mlp.w3``) or timm's own layout; ``weights="hub"`` reads that
file from the torch hub cache (``<hub dir>/checkpoints/dinov2_vitb14_pretrain.pth``, where ``torch.hub.load``
puts it) and raises a FileNotFoundError naming the file if it is missing. The official layout is converted by
timm's own ``checkpoint_filter_fn`` (not by hand) and every key is checked (:func:`semcorr.checkpoints.check_keys`).

Position embeddings for any input size are interpolated exactly as the official DINOv2 code (and the
dino-vit-features extractor GeoAware-SC / SD-DINO use) does it, not as timm's ``dynamic_img_size`` does:
bicubic, ``align_corners=False``, no antialiasing, with ``scale_factor = (h + 0.1) / M`` ("historical kludge"
kept by DINOv2 for backward compatibility, M = 37), and the stored table unchanged when the grid is M x M.
timm resamples to an exact size with antialiasing, which gives other numbers at every size but 518 px.
"""
import math
import os
import warnings
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._optional import optional_import
from .checkpoints import check_keys, load_checkpoint, unwrap_state_dict

__all__ = ["DINOv2Features", "DINOV2_MODELS", "dinov2_hub_checkpoint_path", "load_dinov2_state_dict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torch.hub name -> (timm architecture, file name of the official release in the hub cache)
DINOV2_MODELS = {}
for _size, _arch in (("s", "small"), ("b", "base"), ("l", "large"), ("g", "giant")):
    DINOV2_MODELS["dinov2_vit%s14" % _size] = ("vit_%s_patch14_dinov2" % _arch, "dinov2_vit%s14_pretrain.pth" % _size)
    DINOV2_MODELS["dinov2_vit%s14_reg" % _size] = ("vit_%s_patch14_reg4_dinov2" % _arch,
                                                  "dinov2_vit%s14_reg4_pretrain.pth" % _size)

#: DINOv2 was trained at 518 px: its position table is 37 x 37 (the official files store 1 + 37*37 rows)
_PRETRAIN_IMG = 518
_PATCH = 14
#: DINOv2's ``interpolate_offset`` default (hub models)
_INTERPOLATE_OFFSET = 0.1

FACETS = ("token", "key")


def dinov2_hub_checkpoint_path(name: str) -> str:
    """Where ``torch.hub.load('facebookresearch/dinov2', name)`` caches its weights (the file may not exist)."""
    if name not in DINOV2_MODELS:
        raise ValueError("unknown DINOv2 model %r; choose from %s" % (name, ", ".join(DINOV2_MODELS)))
    return os.path.join(torch.hub.get_dir(), "checkpoints", DINOV2_MODELS[name][1])


def _timm():
    return optional_import("timm", extra="vit", purpose="DINOv2 backbones")


def load_dinov2_state_dict(model: nn.Module, path: Union[str, os.PathLike], what: str) -> None:
    """Load an official-layout (or timm-layout) DINOv2 file into a timm ``VisionTransformer``, strictly.

    The file is read safely (:func:`semcorr.checkpoints.load_checkpoint`); ``module.`` prefixes and a
    ``state_dict`` / ``model`` wrapper are removed; timm's ``checkpoint_filter_fn`` converts the official
    layout (register tokens, class position folded into the class token for the register variants, ViT-G's
    ``w12``/``w3``), and :func:`check_keys` raises a CheckpointError naming any missing, unexpected or
    mis-shaped key (``mask_token`` — used only in DINOv2's training — is the one official key dropped)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    raw = unwrap_state_dict(load_checkpoint(path), keys=("state_dict", "model", "teacher"))
    raw = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in raw.items()}
    converted = checkpoint_filter_fn(dict(raw), model)
    check_keys(model.state_dict(), converted, what)
    model.load_state_dict(converted, strict=True)


class DINOv2Features(nn.Module):
    """Patch-token maps of a DINOv2 ViT at chosen blocks.

    Args:
        name: a key of :data:`DINOV2_MODELS` (``"dinov2_vitb14"`` is the one GeoAware-SC and SD-DINO use).
        layers: block indices (0-based; negative counts from the end). Default ``(-1,)``: the last block, the
            layer GeoAware-SC / SD-DINO take (``layer=11`` of ViT-B/14).
        facet: ``"token"`` (default, GeoAware-SC's choice: the block output before the final norm) or ``"key"``
            (the block's attention keys, DINO-ViT-features' default; heads concatenated head-major — a channel
            permutation of dino-vit-features' (dim, head) order, which changes no cosine similarity).
        weights: ``"auto"`` (default: the official file from the torch hub cache when it is there, else random
            weights with a warning — models built on this backbone through ``build_backbone`` then say so),
            ``None`` (random init, silently: the caller marks it untrained), a path to a state dict (official or
            timm layout) or ``"hub"`` (the official file from the torch hub cache, an error if missing; never
            downloaded). ``pretrained`` tells which happened.
        depth: override the number of blocks (tests use a 2-block ViT-S; a file must then match that depth).

    ``forward(img)`` normalises with the ImageNet mean/std (as DINOv2's and GeoAware-SC's transforms do),
    runs the ViT and returns a list of (B, C, H // 14, W // 14) float maps in the order of ``layers``. Pixels
    beyond the last whole patch (the last H % 14 rows, W % 14 columns) are cropped away (the official code
    refuses such inputs — feed multiples of 14 to match it; :class:`semcorr.models.dino.DinoMatcher` does).
    """

    def __init__(self, name: str = "dinov2_vitb14", layers: Sequence[int] = (-1,), facet: str = "token",
                 weights: Optional[Union[str, os.PathLike]] = "auto", depth: Optional[int] = None):
        super().__init__()
        if name not in DINOV2_MODELS:
            raise ValueError("name: unknown DINOv2 model %r; choose from %s" % (name, ", ".join(DINOV2_MODELS)))
        if facet not in FACETS:
            raise ValueError("facet must be one of %s, got %r" % (", ".join(FACETS), facet))
        if isinstance(layers, int):
            layers = (layers,)
        if not layers:
            raise ValueError("layers must name at least one block")
        timm = _timm()
        kwargs = dict(pretrained=False, num_classes=0, img_size=_PRETRAIN_IMG, dynamic_img_size=True)
        if depth is not None:
            kwargs["depth"] = int(depth)
        self.name, self.facet = name, facet
        self.vit = timm.create_model(DINOV2_MODELS[name][0], **kwargs)
        n = len(self.vit.blocks)
        idx = []
        for i in layers:
            j = int(i) + n if int(i) < 0 else int(i)
            if not 0 <= j < n:
                raise ValueError("layers: block %r out of range for %s with %d blocks" % (i, name, n))
            idx.append(j)
        self.layers = tuple(idx)
        self.vit._pos_embed = self._dinov2_pos_embed  # the official interpolation (module docstring)
        self.pretrained = False
        self._square_input = True
        if weights == "auto":
            if os.path.isfile(dinov2_hub_checkpoint_path(name)):
                weights = "hub"
            else:
                weights = None
                warnings.warn("%s: no weights given and %s is not in the torch hub cache: random weights (its "
                              "features match nothing). Pass weights=<official file>."
                              % (name, dinov2_hub_checkpoint_path(name)), UserWarning, stacklevel=2)
        if weights is not None:
            path = dinov2_hub_checkpoint_path(name) if weights == "hub" else os.fspath(weights)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    "DINOv2 weights %s do not exist. semcorr never downloads weights: fetch the official file once "
                    "on a machine with internet (torch.hub.load('facebookresearch/dinov2', '%s') caches it there, or "
                    "download %s) and pass weights=<path> or put it at %s for weights='hub'."
                    % (path, name, DINOV2_MODELS[name][1], dinov2_hub_checkpoint_path(name)))
            load_dinov2_state_dict(self.vit, path, "%s weights %s" % (name, path))
            self.pretrained = True
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def channels(self) -> int:
        return int(self.vit.embed_dim)

    @property
    def strides(self) -> List[int]:
        return [_PATCH] * len(self.layers)

    @staticmethod
    def grid_size(H: int, W: int):
        """Token grid of an (H, W) input."""
        return H // _PATCH, W // _PATCH

    def interpolate_pos_embed(self, h: int, w: int) -> torch.Tensor:
        """(1, h*w, C) patch position embeddings for an h x w token grid, as DINOv2's
        ``interpolate_pos_encoding`` computes them (float32, then the table's dtype)."""
        vit = self.vit
        table = vit.pos_embed[:, (0 if vit.no_embed_class else vit.num_prefix_tokens):]
        N, C = table.shape[1], table.shape[2]
        M = int(math.sqrt(N))
        if M * M != N:
            raise ValueError("position table has %d patch rows, not a square" % N)
        if h == M and w == M and self._square_input:  # the official code returns its table unchanged here
            return table
        grid = table.float().reshape(1, M, M, C).permute(0, 3, 1, 2)
        out = F.interpolate(grid, scale_factor=((h + _INTERPOLATE_OFFSET) / M, (w + _INTERPOLATE_OFFSET) / M),
                            mode="bicubic", align_corners=False, antialias=False, recompute_scale_factor=False)
        if tuple(out.shape[-2:]) != (h, w):  # pragma: no cover - the +0.1 offset guarantees the size
            raise RuntimeError("interpolated position grid %s != %s" % (tuple(out.shape[-2:]), (h, w)))
        return out.permute(0, 2, 3, 1).reshape(1, h * w, C).to(table.dtype)

    def _dinov2_pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        # timm's patch embedding gives (B, h, w, C) with dynamic_img_size; same token order as timm's own
        vit = self.vit
        B, h, w, C = x.shape
        x = x.reshape(B, h * w, C) + self.interpolate_pos_embed(h, w)
        prefix = []
        if vit.cls_token is not None:
            cls = vit.cls_token
            if not vit.no_embed_class:  # the class token's own position row
                cls = cls + vit.pos_embed[:, :1]
            prefix.append(cls.expand(B, -1, -1))
        if vit.reg_token is not None:  # registers carry no position (DINOv2 inserts them after it is added)
            prefix.append(vit.reg_token.expand(B, -1, -1))
        return vit.pos_drop(torch.cat(prefix + [x], dim=1))

    def forward(self, img: torch.Tensor) -> List[torch.Tensor]:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError("img must be (B, 3, H, W), got shape %s" % (tuple(img.shape),))
        H, W = img.shape[-2:]
        h, w = self.grid_size(H, W)
        if h < 1 or w < 1:
            raise ValueError("img must be at least %d x %d pixels, got %d x %d" % (_PATCH, _PATCH, H, W))
        # the official patch embedding asserts H, W % 14 == 0; we crop the remainder (bottom rows, right columns)
        x = (img[..., :h * _PATCH, :w * _PATCH] - self.mean) / self.std
        # DINOv2 keeps its table as is only for an M x M grid from a square image (``npatch == N and w == h``)
        self._square_input = H == W
        if self.facet == "token":
            maps = self.vit.forward_intermediates(x, indices=list(self.layers), norm=False, stop_early=True,
                                                  output_fmt="NCHW", intermediates_only=True)
            return list(maps)
        return self._keys(x, h, w)

    def _keys(self, x: torch.Tensor, h: int, w: int) -> List[torch.Tensor]:
        got = {}
        hooks = []
        for i in set(self.layers):
            def hook(_mod, _inp, out, i=i):
                got[i] = out
            hooks.append(self.vit.blocks[i].attn.qkv.register_forward_hook(hook))
        try:
            self.vit.forward_intermediates(x, indices=[max(self.layers)], stop_early=True, intermediates_only=True)
        finally:
            for hd in hooks:
                hd.remove()
        C = self.channels
        skip = self.vit.num_prefix_tokens
        out = []
        for i in self.layers:
            qkv = got[i]  # (B, N, 3C): q | k | v, each heads x head_dim
            k = qkv[:, skip:, C:2 * C]
            out.append(k.transpose(1, 2).reshape(k.shape[0], C, h, w).contiguous())
        return out
