"""Evaluation protocols: how each paper's released evaluation script turns a model's matches into PCK.

``semcorr eval --protocol paper`` (the default) looks up the protocol of the (method, dataset) pair here;
``--protocol uniform`` is one common setting (both images squashed to ``--size``, source -> target, cell
centres, the benchmark's usual threshold) for comparing methods with each other; ``--protocol KEY`` names one
protocol of :data:`PROTOCOLS` explicitly (e.g. ``sfnet/pfpascal-bbox``, the variant behind SFNet's paper
number). A protocol is declarative; :mod:`semcorr.eval.protocol_geometry` applies it to one pair.

Vocabulary (each field of :class:`Protocol`):

* ``resize``: the model-input size rule (:class:`Resize`): ``square`` S x S (aspect not kept), ``long_side``
  (HPF: the longer side becomes S, ``downscale_only``), or ``keep``; ``interp`` is how the published loader
  resamples (``align_corners``: WeakAlign/NC-Net's identity-affine ``grid_sample``; ``bilinear``:
  ``F.interpolate(align_corners=False)``; ``antialias``: PIL's bilinear).
* ``pad``: zero padding (pixels, every side) added after the resize (SFNet: 16).
* ``direction``: ``s2t`` transfers source keypoints into the target and measures the error there; ``t2s``
  runs the model with the images swapped (``model(tgt, src)``) and transfers target keypoints into the source,
  where the error is then measured (NC-Net, SFNet, MaCoSNet).
* ``transfer``: how a keypoint goes through the matches: ``field`` (the model's own ``transfer_keypoints``:
  bilinear between cell centres, HPF's box voting for HPF), ``ncnet`` (NC-Net's ``bilinearInterpPointTnf``:
  the grid is corner-aligned, ``linspace(-1, 1, n)`` over the image, in normalised coordinates), ``sfnet``
  (SFNet: border cells cropped, x (n//2)/(n//2 - 1), upsampled to the query image with align_corners, read at
  the rounded keypoint) or ``transform`` (the model's parametric transform applied to the keypoint:
  MaCoSNet's affine + TPS). ``round_query`` reads the matches at the keypoint rounded to a pixel (SCNet).
* ``frame``: where keypoints, predictions and the reference length live (:class:`Frame`): ``input`` (the
  resized, unpadded model input), ``original`` or ``square`` S (WeakAlign/NC-Net's "scnet" procedure: both
  images' keypoints rescaled to 224 x 224); ``one_based``: normalised coordinates treat pixel coordinates as
  1-based (``(x - 1) * 2 / (L - 1) - 1``, WeakAlign/NC-Net's ``PointsToUnitCoords``).
* ``thresh``: ``img`` (max(H, W) of the image the error is measured in, in the frame), ``bbox`` (max side of
  its object box) or ``kpbox`` (max side of the box around its keypoints); ``alphas``; ``average``
  (``pair``: mean over pairs of per-pair PCK; ``keypoint``: pooled); ``split``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

__all__ = ["Resize", "Frame", "Protocol", "PROTOCOLS", "UNIFORM_KEY", "uniform_protocol", "paper_protocol",
           "resolve_protocol", "markdown_table"]

UNIFORM_KEY = "uniform"


@dataclasses.dataclass(frozen=True)
class Resize:
    """Model-input size rule. ``rule``: ``square`` | ``long_side`` | ``keep``."""
    rule: str = "square"
    size: int = 240
    downscale_only: bool = False
    interp: str = "antialias"

    def __post_init__(self):
        if self.rule not in ("square", "long_side", "keep"):
            raise ValueError(f"Resize.rule must be square, long_side or keep, got {self.rule!r}")
        if self.interp not in ("antialias", "bilinear", "align_corners"):
            raise ValueError(f"Resize.interp must be antialias, bilinear or align_corners, got {self.interp!r}")
        if self.rule != "keep" and int(self.size) < 1:
            raise ValueError(f"Resize.size must be positive, got {self.size}")

    def describe(self) -> str:
        if self.rule == "square":
            return f"{self.size}x{self.size} (aspect not kept)"
        if self.rule == "long_side":
            return f"longer side {self.size}" + (" (downscale only)" if self.downscale_only else "") + ", aspect kept"
        return "original size"


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where PCK is measured. ``rule``: ``input`` (the resized, unpadded model input), ``original`` or
    ``square`` (``size`` x ``size``, each axis rescaled)."""
    rule: str = "input"
    size: int = 0
    one_based: bool = False

    def __post_init__(self):
        if self.rule not in ("input", "original", "square"):
            raise ValueError(f"Frame.rule must be input, original or square, got {self.rule!r}")
        if self.rule == "square" and int(self.size) < 2:
            raise ValueError(f"Frame.size must be >= 2 for a square frame, got {self.size}")

    def describe(self) -> str:
        base = {"input": "the resized model input", "original": "the original images",
                "square": f"{self.size}x{self.size} (keypoints rescaled per axis)"}[self.rule]
        return base + (", 1-based pixel coordinates" if self.one_based else "")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (see the module docstring for each field)."""
    key: str
    method: str
    dataset: str
    reference: str                      # the published file(s) it follows
    resize: Resize
    frame: Frame
    thresh: str
    direction: str = "s2t"
    transfer: str = "field"
    pad: int = 0
    crop_cells: int = 0                 # sfnet transfer: grid cells cropped at each border
    round_query: bool = False
    alphas: Tuple[float, ...] = (0.05, 0.1, 0.15)
    average: str = "pair"
    split: str = "test"
    model_kwargs: Tuple[Tuple[str, Any], ...] = ()
    published: Tuple[Tuple[str, str], ...] = ()      # (what, number) as the paper prints it
    weights: str = ""                   # the --model-arg's that load the published network (docs command)
    task: str = "pck"                   # "pck", or "polygon": Caltech LT-ACC / IoU of the transferred polygon
    notes: str = ""

    def __post_init__(self):
        if self.direction not in ("s2t", "t2s"):
            raise ValueError(f"{self.key}: direction must be s2t or t2s, got {self.direction!r}")
        if self.transfer not in ("field", "ncnet", "sfnet", "transform"):
            raise ValueError(f"{self.key}: transfer must be field, ncnet, sfnet or transform, got {self.transfer!r}")
        if self.thresh not in ("img", "bbox", "kpbox"):
            raise ValueError(f"{self.key}: thresh must be img, bbox or kpbox, got {self.thresh!r}")
        if self.task not in ("pck", "polygon"):
            raise ValueError(f"{self.key}: task must be pck or polygon, got {self.task!r}")
        if self.average not in ("pair", "keypoint"):
            raise ValueError(f"{self.key}: average must be pair or keypoint, got {self.average!r}")
        if self.transfer in ("ncnet", "transform") and self.pad:
            raise ValueError(f"{self.key}: the {self.transfer} transfer works in normalised image coordinates "
                             f"and cannot take padding")
        if self.transfer == "sfnet" and self.crop_cells < 1:
            raise ValueError(f"{self.key}: the sfnet transfer needs crop_cells >= 1")

    @property
    def is_uniform(self) -> bool:
        return self.key == UNIFORM_KEY

    def describe(self) -> Dict[str, Any]:
        """The protocol as plain JSON (written into results.json and config.json)."""
        return {"key": self.key, "method": self.method, "dataset": self.dataset, "reference": self.reference,
                "input": self.resize.describe() + (f" + {self.pad} px zero padding" if self.pad else ""),
                "interpolation": self.resize.interp,
                "direction": {"s2t": "source -> target (source keypoints transferred, error in the target)",
                              "t2s": "target -> source (model(tgt, src); target keypoints transferred, error "
                                     "in the source)"}[self.direction],
                "transfer": self.transfer + (" at the rounded keypoint" if self.round_query else ""),
                "frame": self.frame.describe(), "thresh": self.thresh, "alphas": list(self.alphas),
                "average": self.average, "split": self.split, "model_kwargs": dict(self.model_kwargs),
                "published": [list(p) for p in self.published], "weights": self.weights, "task": self.task,
                "notes": self.notes}


# ----------------------------------------------------------------------------------------------------------
# the protocols of the papers (each read from the released evaluation code; see ``reference``)
# ----------------------------------------------------------------------------------------------------------

_SCNET_224 = Frame("square", 224, one_based=True)     # WeakAlign / NC-Net / MaCoSNet pck_procedure='scnet'
# what every HPF protocol shares (evaluate.py + model/util.py resize): the 300-px frame, S2T, its box voting
_HPF = dict(resize=Resize("long_side", 300, downscale_only=True, interp="bilinear"), frame=Frame("input"),
            weights="--model-arg backbone=resnet101 (ImageNet weights in the torch hub cache)")
# what every SFNet protocol shares (eval_*.py + custom_dataset.py): 288 + 16 px padding, grid_T2S read-out
_SFNET = dict(resize=Resize("square", 288, interp="antialias"), direction="t2s", transfer="sfnet", pad=16,
              crop_cells=1, alphas=(0.1,),
              weights="--model-arg backbone=resnet101 --model-arg checkpoint=best_checkpoint.pt")

def _sfnet(dataset, script, frame, thresh, published, variant="", notes=""):
    """Protocol ``sfnet/<dataset><variant>``: SFNet's scripts differ only in the frame and the reference length."""
    return Protocol(f"sfnet/{dataset}{variant}", "sfnet", dataset, "cvlab-yonsei/SFNet " + script,
                    frame=Frame(frame), thresh=thresh, published=(published,), notes=notes, **_SFNET)


# NC-Net's PF-PASCAL procedure (eval_pf_pascal.py), T2S in the 224x224 frame, bilinearInterpPointTnf
_NCNET = dict(frame=_SCNET_224, thresh="img", direction="t2s", transfer="ncnet")
# what both MaCoSNet protocols share (eval.py, pck_procedure='scnet'): 240 px, T2S, its affine + TPS transform
_MACOSNET = dict(resize=Resize("square", 240, interp="align_corners"), frame=_SCNET_224, thresh="img",
                 direction="t2s", transfer="transform",
                 weights="--model-arg backbone=resnet101 --model-arg checkpoint=MACOSNET_CHECKPOINT")

_ALL = [
    Protocol("ncnet/pfpascal", "ncnet", "pfpascal",
             "ignacio-rocco/ncnet eval_pf_pascal.py, lib/pf_dataset.py (pck_procedure='scnet'), "
             "lib/point_tnf.py (corr_to_matches, bilinearInterpPointTnf)",
             Resize("square", 400, interp="align_corners"), **_NCNET, alphas=(0.1,),
             published=(("PF-PASCAL PCK@0.1 (L = 224)", "78.9"),),
             weights="--model-arg checkpoint=ncnet_pfpascal.pth.tar",
             notes="softmax over the source cells of each target cell; keypoints and L = 224 in the 224x224 frame"),
    Protocol("pmnc/pfpascal", "pmnc", "pfpascal",
             "PMNC paper (Lee et al., CVPR 2021; code not available here): NC-Net's PF-PASCAL protocol, "
             "whose NC-Net number it reproduces (79.0), at the 800 px its 25x25 / 50x50 grids imply",
             Resize("square", 800, interp="align_corners"), **_NCNET, alphas=(0.1, 0.05, 0.03, 0.01),
             published=(("PF-PASCAL PCK@0.1/0.05/0.03/0.01, ResNet-101 layer 3 (50x50)", "90.6/82.4/71.6/29.1"),
                        ("same, layer 4 (25x25)", "86.8/74.5/58.0/14.7")),
             weights="--model-arg checkpoint=PMNC_CHECKPOINT",
             notes="input size not stated in the slides: 800 px from the grid sizes (stride 32 x 25, "
                   "stride 16 x 50), PMNC's own image_size='paper'"),
    Protocol("hpf/pfpascal", "hpf", "pfpascal",
             "juhongm999/hpf evaluate.py, model/util.py (resize), model/evaluation.py, data/dataset.py",
             thresh="img", **_HPF,
             model_kwargs=(("benchmark", "pfpascal"),),
             published=(("PF-PASCAL PCK@0.05/0.1 alpha_img, res101", "60.1/84.8"),
                        ("res50", "60.5/83.4")),
             notes="L = max(H, W) of the original target x the resize ratio"),
    Protocol("hpf/pfwillow", "hpf", "pfwillow",
             "juhongm999/hpf evaluate.py, data/pfwillow.py (get_pckthres 'bbox' = target keypoint box)",
             thresh="kpbox", **_HPF,
             model_kwargs=(("benchmark", "pfwillow"),),
             published=(("PF-WILLOW PCK@0.05/0.1 (keypoint box), res101", "45.9/74.4"), ("res50", "46.5/72.4"))),
    Protocol("hpf/spair", "hpf", "spair",
             "juhongm999/hpf evaluate.py, data/spair.py (target bndbox)",
             thresh="bbox", **_HPF,
             alphas=(0.1,), model_kwargs=(("benchmark", "spair"),),
             published=(("SPair-71k PCK@0.1 alpha_bbox, res101", "28.2"), ("res50", "27.2"))),
    Protocol("hpf/caltech", "hpf", "caltech",
             "juhongm999/hpf evaluate.py, data/caltech.py, model/evaluation.py (eval_caltech: the source "
             "polygon's vertices transferred, both polygons rasterised at the resized target size)",
             thresh="img", task="polygon", **_HPF, model_kwargs=(("benchmark", "caltech"),),
             published=(("Caltech-101 LT-ACC/IoU, res101", "0.87/0.63"), ("res50", "0.88/0.64")),
             notes="LOC-ERR is not computed by HPF's script"),
    _sfnet("pfpascal", "eval_pascal.py, custom_dataset.py (PF_Pascal, eval_type='image_size', the script's default)",
           "input", "img", ("PF-PASCAL PCK@0.1, this protocol", "not in the paper"),
           notes="the paper's 0.79 is alpha_bbox: protocol sfnet/pfpascal-bbox"),
    _sfnet("pfpascal", "eval_pascal.py --eval_type bounding_box (L = max side of the source box, original frame)",
           "original", "bbox", ("PF-PASCAL PCK@0.1 alpha_bbox", "0.79"), variant="-bbox",
           notes="needs PF-PASCAL's Annotations/*.mat boxes"),
    _sfnet("pfwillow", "eval_willow.py, custom_dataset.py (PF_WILLOW, eval_type='bounding_box': L = keypoint box of "
           "the source, original frame)", "original", "kpbox", ("PF-WILLOW PCK@0.1", "0.74")),
    Protocol("scnet/pfpascal", "scnet", "pfpascal",
             "k-han/SCNet SCNet/eva_PCK_SCNet_*.m (dense flow read at the rounded source keypoint) with the "
             "224x224 frame and L = 224 that WeakAlign/NC-Net name 'the evaluation procedure of SCNet'",
             Resize("square", 224, interp="antialias"), Frame("square", 224), "img", round_query=True,
             alphas=(0.05, 0.1, 0.15),
             published=(("PF-PASCAL PCK@0.1, SCNet-AG+", "72.2"),),
             weights="--model-arg checkpoint=SCNET_CHECKPOINT (see docs/MODELS.md)",
             notes="the released MATLAB script divides the error by H, the image diagonal and the box side in "
                   "turn; that triple normalisation is not reproduced (see docs/EVALUATION.md)"),
    Protocol("macosnet/pfpascal", "macosnet", "pfpascal",
             "YunChunChen/MaCoSNet-pytorch eval.py, util/eval_util.py (pck_metric), data/pf_pascal.py "
             "(PFPascalVal, pck_procedure='scnet')",
             **_MACOSNET, alphas=(0.1,), published=(("PF-PASCAL PCK@0.1", "79.0"),)),
    Protocol("macosnet/pfwillow", "macosnet", "pfwillow",
             "YunChunChen/MaCoSNet-pytorch eval.py, util/eval_util.py, data/pf_willow.py (pck_procedure='scnet')",
             **_MACOSNET, alphas=(0.05, 0.1, 0.15),
             published=(("PF-WILLOW PCK@0.05/0.1/0.15 (L = 224)", "0.538/0.854/0.939"),)),
    Protocol("dino/spair", "dino", "spair",
             "Junyi42/GeoAware-SC pck_train.py --KPT_RESULT (per keypoint: its setting for zero-shot methods), "
             "utils/utils_dataset.py (load_spair_data: L = max side of the target box)",
             Resize("keep"), Frame("original"), "bbox", alphas=(0.1, 0.05, 0.01), average="keypoint",
             published=(("SPair-71k PCK@0.1, GeoAware-SC zero-shot (SD + DINOv2 features, adaptive flip: more than "
                         "this DINOv2-only model)", "65.4"),),
             weights="--model-arg weights=dinov2_vitb14_pretrain.pth (the official DINOv2 file)",
             notes="the model letterboxes to 840 px itself; error / box in the 840 frame = in the original frame"),
]

#: every protocol by key
PROTOCOLS: Dict[str, Protocol] = {p.key: p for p in _ALL}

#: (method, dataset) -> the key ``--protocol paper`` uses
_PAPER_DEFAULT = {("ncnet", "pfpascal"): "ncnet/pfpascal", ("pmnc", "pfpascal"): "pmnc/pfpascal",
                  ("hpf", "pfpascal"): "hpf/pfpascal", ("hpf", "pfwillow"): "hpf/pfwillow",
                  ("hpf", "spair"): "hpf/spair", ("hpf", "caltech"): "hpf/caltech",
                  ("sfnet", "pfpascal"): "sfnet/pfpascal",
                  ("sfnet", "pfwillow"): "sfnet/pfwillow", ("scnet", "pfpascal"): "scnet/pfpascal",
                  ("macosnet", "pfpascal"): "macosnet/pfpascal", ("macosnet", "pfwillow"): "macosnet/pfwillow",
                  ("dino", "spair"): "dino/spair"}

#: what the papers report but no protocol covers yet, and why (printed in the fallback message and the docs)
NOT_COVERED = {
    ("sparse-ncnet", None): "Sparse NC-Net reports HPatches, InLoc and Aachen only (no semantic benchmark)",
    ("sfnet", "caltech"): "SFNet releases no Caltech-101 evaluation script",
    ("macosnet", "tss"): "MaCoSNet writes .flo files scored by the TSS MATLAB toolkit (and its released TSSVal "
                         "uses an undefined class_label); not implemented",
    ("macosnet", "spair"): "MaCoSNet's release has no SPair-71k loader",
    ("pmnc", "spair"): "PMNC's slides show SPair-71k qualitatively only",
}


def uniform_protocol(dataset: str, size: Optional[int], thresh: str, method: str = "*") -> Protocol:
    """Today's common setting: both images ``size`` x ``size`` (antialiased bilinear), source -> target through
    the model's own keypoint transfer (cell centres), PCK in the resized frame with the benchmark's threshold."""
    resize = Resize("square", int(size), interp="antialias") if size else Resize("keep")
    return Protocol(UNIFORM_KEY, method, dataset, "semcorr (common setting for comparing methods)", resize,
                    Frame("input"), thresh)


def _dataset_key(name: str) -> str:
    from semcorr.data.datasets import ALIASES

    return ALIASES.get(name.lower(), name.lower())


def paper_protocol(method: str, dataset: str) -> Tuple[Optional[Protocol], str]:
    """The published protocol of (method, dataset), or (None, why not)."""
    ds = _dataset_key(dataset)
    key = _PAPER_DEFAULT.get((method, ds))
    if key is not None:
        return PROTOCOLS[key], ""
    why = NOT_COVERED.get((method, ds)) or NOT_COVERED.get((method, None)) or \
        f"the {method} paper reports no number on {ds}"
    return None, why


def resolve_protocol(spec: str, method: str, dataset: str) -> Tuple[Optional[Protocol], str]:
    """``--protocol`` -> (protocol or None for the uniform setting, a note).

    ``spec``: ``paper`` (the published protocol; the uniform setting with a note saying why when the paper
    has none), ``uniform``, or a key of :data:`PROTOCOLS` (its method and dataset must match the run's).
    """
    if spec == UNIFORM_KEY:
        return None, ""
    if spec == "paper":
        proto, why = paper_protocol(method, dataset)
        if proto is None:
            return None, f"no published protocol for {method} on {_dataset_key(dataset)} ({why}): uniform setting"
        return proto, ""
    if spec not in PROTOCOLS:
        raise ValueError(f"--protocol must be paper, uniform or one of {', '.join(sorted(PROTOCOLS))}; got {spec!r}")
    proto = PROTOCOLS[spec]
    ds = _dataset_key(dataset)
    if (proto.method, proto.dataset) != (method, ds) and method != "identity":
        raise ValueError(f"--protocol {spec} is {proto.method} on {proto.dataset}, but the run is {method} on {ds}")
    if proto.dataset != ds:
        raise ValueError(f"--protocol {spec} is for dataset {proto.dataset}, not {ds}")
    return proto, ""


_DATASET_TITLE = {"pfpascal": "PF-PASCAL", "pfwillow": "PF-WILLOW", "spair": "SPair-71k", "caltech": "Caltech-101",
                  "tss": "TSS"}


def markdown_table() -> str:
    """The method x dataset -> protocol table of docs/EVALUATION.md (a test keeps the two equal)."""
    lines = ["| method | dataset | `--protocol` key | input | direction / transfer | PCK frame, L | alphas | "
             "published (paper) | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in _ALL:
        d = p.describe()
        direction = "T2S" if p.direction == "t2s" else "S2T"
        default = _PAPER_DEFAULT.get((p.method, p.dataset)) == p.key
        weights, _, remark = p.weights.partition(" (")
        cmd = (f"`semcorr eval -m {p.method} -d {p.dataset} -r DATA/{_DATASET_TITLE[p.dataset]}"
               + ("" if default else f" --protocol {p.key}") + (f" {weights}" if weights else "") + "`"
               + (f" ({remark}" if remark else ""))
        published = "; ".join(f"{what}: **{num}**" for what, num in p.published)
        measure = (f"{d['frame']}; {p.thresh}" if p.task == "pck" else
                   f"LT-ACC / IoU of the transferred polygon, rasterised in {d['frame']}")
        alphas = ", ".join(format(a, "g") for a in p.alphas) if p.task == "pck" else "-"
        lines.append(f"| {p.method} | {_DATASET_TITLE[p.dataset]} | `{p.key}`{' (paper default)' if default else ''} "
                     f"| {d['input']} | {direction}, {d['transfer']} | {measure} | {alphas} | {published} | {cmd} |")
    return "\n".join(lines)
