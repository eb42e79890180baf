"""The no-motion baseline as a model: every point maps to the same relative position in the target image.

The lower bound quoted next to PCK tables, usable wherever a model is (``build_model("identity")``,
``semcorr match --method identity``). A source pixel (x, y) maps to (x * Wt / Ws, y * Ht / Hs), the rule of
``semcorr eval``'s identity baseline; with the default ``stride=1`` every pixel is a cell, so
:meth:`Matches.transfer_keypoints` gives that rule exactly at any keypoint inside the image.
"""
import torch

from semcorr_ext import flow

from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["Identity"]


@register_model("identity")
class Identity(CorrespondenceModel):
    """No-motion baseline. Args: ``stride``: grid step in source pixels (1: one cell per pixel). Confidence is 1
    everywhere; no ``mutual`` flag (there is no matching)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        if int(stride) < 1:
            raise ValueError("identity: stride must be >= 1, got %r" % (stride,))
        self.stride = int(stride)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # gives the model a device

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        B = src_img.shape[0]
        (Hs, Ws), (Ht, Wt) = src_img.shape[-2:], tgt_img.shape[-2:]
        gh, gw = max(1, Hs // self.stride), max(1, Ws // self.stride)
        centres = flow.unnormalize_coords(flow.grid_coords(gh, gw, (Hs, Ws), device=src_img.device), (Hs, Ws))
        tgt_px = centres * centres.new_tensor([Wt / Ws, Ht / Hs])
        field = flow.normalize_coords(tgt_px, (Ht, Wt))[None].expand(B, -1, -1, -1).contiguous()
        conf = torch.ones(B, gh, gw, device=src_img.device)
        return Matches(field=field, confidence=conf, src_size=(Hs, Ws), tgt_size=(Ht, Wt))
