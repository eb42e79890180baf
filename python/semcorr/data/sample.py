"""A ready-made image pair with exact ground truth, needing no download: a photo bundled with
scikit-image and a random warp of it (:mod:`semcorr.data.warps`).

    pair = sample_pair(seed=0, size=240)
    src, tgt = pair.tensors()                 # (1, 3, 240, 240) float in [0, 1]
    pair.src_kps, pair.tgt_kps                # (N, 2) float32 pixels (x, y); -1 rows: left the target image

The source keypoints are a fixed 6x6 grid over the central 70% of the image; their target positions are
``warp.forward`` of them (exact up to 1e-6 px). A keypoint whose target falls outside the target image is
padded with -1 in both arrays (the PF-PASCAL convention for missing points).
"""
from dataclasses import dataclass

import numpy as np
import torch

from .warps import Warp, random_warp, warp_image

__all__ = ["SamplePair", "sample_pair", "load_sample_image", "SAMPLE_IMAGES"]

#: scikit-image bundled photos usable as a source
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


@dataclass
class SamplePair:
    src_img: np.ndarray  # (H, W, 3) float32 in [0, 1]
    tgt_img: np.ndarray  # (H, W, 3) float32 in [0, 1]
    src_kps: np.ndarray  # (N, 2) float32 source pixels (x, y), -1 = missing
    tgt_kps: np.ndarray  # (N, 2) float32 target pixels (x, y), -1 = missing
    warp: Warp           # source pixel -> target pixel mapping (forward / inverse)

    @property
    def size(self):
        return self.src_img.shape[:2]

    def tensors(self, device="cpu"):
        """(src, tgt) as (1, 3, H, W) float32 tensors in [0, 1]."""
        f = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].to(device)  # noqa: E731
        return f(self.src_img), f(self.tgt_img)

    def kps_tensors(self, device="cpu"):
        """(src_kps, tgt_kps) as (1, N, 2) float32 tensors."""
        return (torch.from_numpy(self.src_kps)[None].to(device), torch.from_numpy(self.tgt_kps)[None].to(device))


def load_sample_image(name: str = "astronaut", size: int = 240) -> np.ndarray:
    """A scikit-image bundled photo resized (anti-aliased) to ``size`` x ``size``: (size, size, 3) float32."""
    import skimage.data
    from skimage.color import gray2rgb
    from skimage.transform import resize

    if name not in SAMPLE_IMAGES:
        raise ValueError("unknown sample image %r; choose from %s" % (name, ", ".join(SAMPLE_IMAGES)))
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = gray2rgb(img)
    img = img[..., :3]
    out = resize(img, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return (out / 255.0).astype(np.float32) if img.dtype == np.uint8 else out.astype(np.float32)


def sample_pair(seed: int = 0, size: int = 240, *, image: str = "astronaut", kind: str = "affine+tps",
                grid: int = 6, margin: float = 0.15) -> SamplePair:
    """The source photo, its warp by ``random_warp((size, size), seed, kind)`` and ``grid`` x ``grid``
    keypoints spanning [margin, 1 - margin] of the image, with their exact targets."""
    src = load_sample_image(image, size)
    w = random_warp((size, size), seed, kind)
    tgt = warp_image(src, w).astype(np.float32)
    lin = np.linspace(margin, 1 - margin, grid) * (size - 1)
    xx, yy = np.meshgrid(lin, lin, indexing="xy")
    src_kps = np.stack([xx.ravel(), yy.ravel()], 1)
    tgt_kps = w.forward(src_kps)
    inside = ((tgt_kps >= 0) & (tgt_kps <= size - 1)).all(1)
    src_kps[~inside] = -1
    tgt_kps[~inside] = -1
    return SamplePair(src, tgt, src_kps.astype(np.float32), tgt_kps.astype(np.float32), w)
