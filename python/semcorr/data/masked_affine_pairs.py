"""SFNet's training pairs: one image and its foreground mask -> two random affine warps of it with their masks.

The pipeline of cvlab-yonsei/SFNet ``custom_dataset.py`` ``Pascal_Seg_Synth.__getitem__``, step by step:

1. the image and its mask flipped horizontally together with probability 1/2;
2. both resized to S x S (PIL bilinear; the mask as a 0/255 grey image, then in [0, 1]);
3. two colour jitters of the image (torchvision ``ColorJitter(0.1, 0.1, 0.1, 0.1)`` each): image 1, image 2;
4. two random affine transforms ``A_k = I + 0.15 N(0, 1)`` on the 6 entries of the 2 x 3 matrix (``affine_grid``
   coordinates); image 1 = ``warp(jitter 1, A_1)``, image 2 = ``warp(jitter 2, A_2)``;
5. the masks, so that only the foreground seen in *both* images counts: ``m = warp(warp(mask, A_1), A_1^-1)``,
   target mask ``m_2 = warp(m, A_2)``, source mask ``m_1 = warp(warp(m_2, A_2^-1), A_1)``;
6. both masks resized to the feature grid (S / 16; PIL bilinear of the 8-bit mask) and binarised at > 0.1.

``warp(x, A)`` is ``grid_sample(x, affine_grid(A, x.size()))`` with zero padding; the released code was written for
PyTorch 1.0 (its README), whose ``affine_grid`` / ``grid_sample`` aligned corners: ``align_corners=True`` here.
Images stay in [0, 1] (the model normalises them; the released dataset normalises them itself).

Random numbers come from torch's generator of the process (the released code uses numpy's and torchvision's):
with ``torch.manual_seed`` a run is reproducible; with several processes each draws its own stream, so the
augmentation of a pair depends on the number of processes.
"""
from typing import Any, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["MaskedAffinePairs", "SyntheticMaskedImages", "released_affine", "warp", "AFFINE_STD", "JITTER",
           "MASK_THRESHOLD", "FEATURE_STRIDE"]

#: std of the random affine entries (``np.random.randn(6) * 0.15``)
AFFINE_STD = 0.15
#: ``ColorJitter(brightness, contrast, saturation, hue)``
JITTER = (0.1, 0.1, 0.1, 0.1)
#: masks on the feature grid are ``> 0.1``
MASK_THRESHOLD = 0.1
#: image size / feature grid size (``image_H = feature_H * 16``)
FEATURE_STRIDE = 16


def released_affine(generator=None) -> torch.Tensor:
    """(3, 3) float64: identity + ``AFFINE_STD`` x N(0, 1) on the first two rows."""
    theta = torch.eye(3, dtype=torch.float64)
    theta[:2] += torch.randn(2, 3, dtype=torch.float64, generator=generator) * AFFINE_STD
    return theta


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(C, H, W) sampled at ``affine_grid(theta[:2])`` (output pixel -> input position), zeros outside."""
    t = theta[:2].to(torch.float32)[None]
    grid = F.affine_grid(t, [1, *x.shape], align_corners=True)
    return F.grid_sample(x[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


class MaskedAffinePairs(Dataset):
    """Training pairs of a dataset of images with foreground masks, as the released SFNet makes them.

    Args:
        source: items ``{"image": (H, W, 3) uint8, "mask": (H, W) {0, 1}}``
            (:class:`semcorr.data.datasets.voc.VOCMasks`, :class:`SyntheticMaskedImages`).
        image_size: S (released: ``feature_h * 16`` = 320).
        feature_size: side of the masks' grid (default ``S / 16``, released 20).
        seed: ``None`` (default, as released): random numbers from the process's generator, a new pair every
            epoch; an int: item ``i`` is drawn from a generator seeded with ``(seed, i)``, always the same pair
            (a fixed validation set).

    Items: ``index``, ``src_img``, ``tgt_img`` (3, S, S) float32 in [0, 1]; ``src_mask``, ``tgt_mask``
    (1, s, s) float32 in {0, 1}.
    """

    def __init__(self, source, image_size: int = 320, feature_size: int = None, seed: int = None):
        self.source = source
        self.size = int(image_size)
        self.feature_size = int(feature_size) if feature_size else max(1, self.size // FEATURE_STRIDE)
        self.seed = None if seed is None else int(seed)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if self.seed is None:
            return self._pair(i)
        with torch.random.fork_rng(devices=[]):  # the process's generator is left as it was
            torch.manual_seed(self.seed * 1000003 + int(i))
            return self._pair(i)

    def _pair(self, i: int) -> Dict[str, Any]:
        from PIL import Image
        from torchvision.transforms import ColorJitter
        from torchvision.transforms import functional as TF

        item = self.source[i]
        image = Image.fromarray(np.asarray(item["image"], dtype=np.uint8))
        mask = Image.fromarray((np.asarray(item["mask"]) > 0).astype(np.uint8) * 255)
        if float(torch.rand(())) < 0.5:  # pair flip
            image, mask = TF.hflip(image), TF.hflip(mask)
        S, s = self.size, self.feature_size
        bilinear = TF.InterpolationMode.BILINEAR
        image = TF.resize(image, [S, S], interpolation=bilinear)
        jitter = ColorJitter(*JITTER)
        img1, img2 = TF.to_tensor(jitter(image)), TF.to_tensor(jitter(image))
        m = TF.to_tensor(TF.resize(mask, [S, S], interpolation=bilinear))
        a1, a2 = released_affine(), released_affine()
        i1, i2 = torch.linalg.inv(a1), torch.linalg.inv(a2)
        img1, img2 = warp(img1, a1), warp(img2, a2)
        m = warp(warp(m, a1), i1)  # pixels the source warp cuts off become background
        m2 = warp(m, a2)
        m1 = warp(warp(m2, i2), a1)

        def on_grid(x):  # ToPILImage (x * 255 -> uint8), PIL bilinear resize, ToTensor, binarise
            small = TF.resize(TF.to_pil_image(x.clamp(0, 1)), [s, s], interpolation=bilinear)
            return (TF.to_tensor(small) > MASK_THRESHOLD).float()

        return {"index": int(i), "src_img": img1.clamp(0, 1).contiguous(), "tgt_img": img2.clamp(0, 1).contiguous(),
                "src_mask": on_grid(m1), "tgt_mask": on_grid(m2)}


class SyntheticMaskedImages(Dataset):
    """Offline images with foreground masks: a random shape (ellipse or polygon) textured with one bundled photo
    pasted on another; item ``i`` is deterministic given ``seed``. Stands in for VOC's segmented images."""

    def __init__(self, n: int = 64, size: int = 320, seed: int = 0, images: Sequence[str] = None):
        from semcorr.data.synthetic import OFFLINE_IMAGES, load_offline_image

        self.n, self.size, self.seed = int(n), int(size), int(seed)
        self.photos = [load_offline_image(name, self.size) for name in (images or OFFLINE_IMAGES)]
        if len(self.photos) < 2:
            raise ValueError("SyntheticMaskedImages: need at least 2 photos (foreground and background)")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Dict[str, Any]:
        from skimage.draw import ellipse, polygon

        S = self.size
        rng = np.random.default_rng([self.seed, int(i)])
        bg_i, fg_i = rng.choice(len(self.photos), size=2, replace=False)
        mask = np.zeros((S, S), dtype=np.uint8)
        cy, cx = rng.uniform(0.35, 0.65, 2) * S
        if rng.random() < 0.5:
            ry, rx = rng.uniform(0.15, 0.35, 2) * S
            rr, cc = ellipse(cy, cx, ry, rx, shape=(S, S), rotation=rng.uniform(-np.pi, np.pi))
        else:
            k = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, k))
            rad = rng.uniform(0.15, 0.38, k) * S
            rr, cc = polygon(cy + rad * np.sin(ang), cx + rad * np.cos(ang), shape=(S, S))
        mask[rr, cc] = 1
        img = self.photos[bg_i] * (1 - mask[..., None]) + self.photos[fg_i] * mask[..., None]
        return {"image": np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), "mask": mask}
