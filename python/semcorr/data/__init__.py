"""Data: image-pair datasets and synthetic pairs with known correspondences.

Submodules (imported on use, so that a missing optional dependency of one does not break the others):
  warps     random affine / thin-plate-spline warps with exact ground-truth point mappings
  sample    ``sample_pair()``: a bundled photo and a warp of it, with keypoints; needs no download
  synthetic a dataset of such warped pairs
  datasets  PF-PASCAL, PF-WILLOW, SPair-71k readers (see that module)
"""
