"""Evaluation: PCK and its reference lengths, Caltech mask-transfer metrics, TSS flow PCK,
and the benchmark runner (``semcorr.eval.runner``, imported on demand because it pulls in
the models). The runner's parts depend on each other in one direction: ``inference`` (model ->
predictions), ``records`` (predictions -> records, sums, tables), ``figures`` (results and
predictions -> pictures; never runs a model)."""
from .pck import (pck, pck_counts, keypoint_distances, valid_mask, thresh_img, thresh_bbox,
                  thresh_kps_bbox)
from .mask_transfer import transfer_mask, label_transfer_accuracy, mask_iou, localization_error
from .flow_pck import flow_pck, flow_valid

__all__ = [
    "pck", "pck_counts", "keypoint_distances", "valid_mask", "thresh_img", "thresh_bbox",
    "thresh_kps_bbox", "transfer_mask", "label_transfer_accuracy", "mask_iou",
    "localization_error", "flow_pck", "flow_valid",
]
