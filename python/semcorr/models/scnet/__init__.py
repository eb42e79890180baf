"""SCNet (Han et al., ICCV 2017), the released network by default: ``build_model("scnet")``.

Modules: :mod:`.model` (the network, training parameter groups), :mod:`.geometry` (the Hough-vote kernel),
:mod:`.loss` (hinge loss, IoU ground truth), :mod:`.dense_flow` (flow from region matches, SD filter),
:mod:`.proposals` (Randomized Prim's pipeline, substitutes), :mod:`.matconvnet` (released ``.mat`` weights).
See docs/models/scnet.md.
"""
from .dense_flow import flow_from_region_matches, sd_filter
from .geometry import hough_bins, hough_vote_scores
from .loss import active_proposals, region_iou, scnet_loss
from .matconvnet import load_matconvnet, read_matconvnet_params
from .model import SCNet, VGG16Pool4, published_optimizer, reset_momentum, trainable_parameters
from .proposals import felzenszwalb_boxes, randomized_prim_boxes, sliding_window_boxes

__all__ = ["SCNet", "VGG16Pool4", "trainable_parameters", "published_optimizer", "reset_momentum", "scnet_loss",
           "region_iou", "active_proposals",
           "hough_bins", "hough_vote_scores", "flow_from_region_matches", "sd_filter", "load_matconvnet",
           "read_matconvnet_params", "randomized_prim_boxes", "sliding_window_boxes", "felzenszwalb_boxes"]
