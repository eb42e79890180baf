"""Evaluation protocols: each published evaluation's geometry on small fixtures. A fake model returns matches
we choose; the expected numbers are computed here by hand from the published formulas (NC-Net's
PointsToUnitCoords / bilinearInterpPointTnf, SFNet's crop + 10/9-style scale + align_corners upsampling +
rounded lookup, HPF's util.resize + pckthres * ratio, MaCoSNet's normalised point transform, SCNet's rounded
lookup), and the protocol code must put each keypoint where the published code would."""
import json
import math
from pathlib import Path

import pytest
import torch

from semcorr.eval.protocol_geometry import evaluate_pair, input_scale, ncnet_interp, prepare_image
from semcorr.eval.protocols import PROTOCOLS, markdown_table, resolve_protocol
from semcorr.models.base import Matches

REPO = Path(__file__).resolve().parents[1]


def _img(h, w, value):
    return torch.full((3, h, w), float(value))


def _sample(src_hw, tgt_hw, src_kps, tgt_kps, src_bbox=None, tgt_bbox=None):
    return {"src_img": _img(*src_hw, 0.25), "tgt_img": _img(*tgt_hw, 0.75),
            "src_kps": torch.tensor(src_kps, dtype=torch.float32), "tgt_kps": torch.tensor(tgt_kps, dtype=torch.float32),
            "src_bbox": torch.tensor(src_bbox if src_bbox else [-1.0] * 4),
            "tgt_bbox": torch.tensor(tgt_bbox if tgt_bbox else [-1.0] * 4)}


class GridModel:
    """Matches on a (Gh, Gw) query grid whose values are given corner-aligned over a (Rh, Rw) reference grid
    (g = -1 / +1: first / last reference cell), stored in the Matches convention (cell centres, normalised
    over the reference image), as NC-Net / SFNet forwards produce them."""

    def __init__(self, g, ref_grid):
        self.g, self.ref_grid, self.calls = g.double(), ref_grid, []

    def __call__(self, a, b):
        self.calls.append((tuple(a.shape[-2:]), tuple(b.shape[-2:]), a, b))
        Rh, Rw = self.ref_grid
        H, W = b.shape[-2:]
        cells = (self.g + 1) / 2 * torch.tensor([Rw - 1.0, Rh - 1.0], dtype=torch.float64)
        pix = (cells + 0.5) * torch.tensor([W / Rw, H / Rh], dtype=torch.float64) - 0.5
        field = pix * torch.tensor([2 / (W - 1), 2 / (H - 1)], dtype=torch.float64) - 1
        Gh, Gw = self.g.shape[:2]
        return Matches(field=field[None].float(), confidence=torch.zeros(1, Gh, Gw), src_size=tuple(a.shape[-2:]),
                       tgt_size=(H, W), extras={"tgt_grid": self.ref_grid})


class PixelMapModel:
    """Matches whose transfer_keypoints is p -> p * scale + shift in the input images' pixels (HPF's and
    SCNet's own transfers are pixel maps too)."""

    def __init__(self, scale=1.0, shift=(0.0, 0.0)):
        self.scale, self.shift, self.calls = scale, torch.tensor(shift), []

    def __call__(self, a, b):
        self.calls.append((tuple(a.shape[-2:]), tuple(b.shape[-2:]), a, b))
        m = Matches(field=torch.zeros(1, 2, 2, 2), confidence=torch.zeros(1, 2, 2), src_size=tuple(a.shape[-2:]),
                    tgt_size=tuple(b.shape[-2:]))
        m.transfer_keypoints = lambda k: k * self.scale + self.shift
        return m


def _affine_grid_values(G, a, b):
    """(G, G, 2) values a * node + b at the nodes linspace(-1, 1, G) (an affine map, which NC-Net's bilinear
    interpolation reproduces exactly)."""
    xs = torch.linspace(-1, 1, G, dtype=torch.float64)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    return torch.stack([a[0] * xx + b[0], a[1] * yy + b[1]], -1)


# ----------------------------------------------------------------------------------------------------------
def test_ncnet_pfpascal_reads_target_to_source_at_400_on_corner_grids_in_the_224_frame():
    proto = PROTOCOLS["ncnet/pfpascal"]
    model = GridModel(_affine_grid_values(5, (0.5, 0.5), (0.2, -0.1)), (5, 5))
    # target 100 x 150 (H x W), source 200 x 300; one target keypoint (75, 40), two source ground truths
    # placed 22 and 23 px (224 frame) from where the published code sends it
    tx, ty = 75 * 224 / 150, 40 * 224 / 100                            # lib/pf_dataset.py, 'scnet'
    t = ((tx - 1 - 223 / 2) * 2 / 223, (ty - 1 - 223 / 2) * 2 / 223)    # normalize_axis(x, 224)
    n = (0.5 * t[0] + 0.2, 0.5 * t[1] - 0.1)                            # the grid's affine values there
    sx, sy = n[0] * 223 / 2 + 1 + 223 / 2, n[1] * 223 / 2 + 1 + 223 / 2  # unnormalize_axis(., 224)
    gt = [[(sx + 22) * 300 / 224, sy * 200 / 224], [sx * 300 / 224, (sy - 23) * 200 / 224]]
    out = evaluate_pair(model, _sample((200, 300), (100, 150), gt, [[75, 40], [75, 40]]), proto)
    (q_hw, r_hw, q, r), = model.calls
    assert q_hw == (400, 400) and r_hw == (400, 400)
    assert float(q.mean()) == pytest.approx(0.75) and float(r.mean()) == pytest.approx(0.25)   # model(tgt, src)
    # (the Matches field is float32, as the published volumes: agreement to 1e-4 px)
    assert out["pred"][0].tolist() == pytest.approx([sx, sy], abs=1e-4)
    assert out["gt"][0].tolist() == pytest.approx([sx + 22, sy], abs=1e-4)
    assert out["thresh"]["img"] == 224.0
    d = (out["pred"] - out["gt"]).norm(dim=1)
    assert d.tolist() == pytest.approx([22.0, 23.0], abs=1e-4)          # PCK@0.1 (limit 22.4): 1 of 2


def test_ncnet_interp_is_the_published_bilinear_on_nodes_and_its_edge_rule():
    v = torch.arange(18, dtype=torch.float64).reshape(3, 3, 2)
    # on a node: that node's value; between nodes (0.5, -0.5): the mean of the 4 surrounding nodes
    assert ncnet_interp(v, torch.tensor([[-1.0, -1.0]])).tolist() == [[0.0, 1.0]]
    assert ncnet_interp(v, torch.tensor([[1.0, 1.0]]))[0].tolist() == pytest.approx([16.0, 17.0])
    mid = ncnet_interp(v, torch.tensor([[0.5, -0.5]]))[0]
    assert mid.tolist() == pytest.approx(((v[0, 1] + v[0, 2] + v[1, 1] + v[1, 2]) / 4).tolist())
    # beyond the first node the published weights (absolute distances) give a weighted mean, not an
    # extrapolation: at x = -1.5 on row 0 the nodes are -1 and 0, weights |t - 0| = 1.5 for node 0 and
    # |t + 1| = 0.5 for node 1 (linear extrapolation would give 1.5 v0 - 0.5 v1)
    x = ncnet_interp(v, torch.tensor([[-1.5, -1.0]]))[0]
    assert x.tolist() == pytest.approx(((1.5 * v[0, 0] + 0.5 * v[0, 1]) / 2.0).tolist())


def test_sfnet_pfpascal_pads_crops_scales_upsamples_and_rounds_half_to_even():
    proto = PROTOCOLS["sfnet/pfpascal"]
    G = 6
    jj, ii = torch.meshgrid(torch.arange(G, dtype=torch.float64), torch.arange(G, dtype=torch.float64), indexing="xy")
    g = torch.stack([0.3 * jj - 0.9, 0.25 * ii - 0.7], -1)       # grid_T2S value of query cell (i, j)
    model = GridModel(g, (G, G))
    # target 96 x 144: keypoint (50.25, 47.6) -> 288 frame (100.5, 142.8) -> rounded (100, 143): np.round is
    # half to even
    px, py = 100, 143
    jc, ic = px * (G - 2 - 1) / 287, py * (G - 2 - 1) / 287      # align_corners upsampling of the 4x4 crop
    gx = (0.3 * (jc + 1) - 0.9) * (G // 2) / (G // 2 - 1)         # crop offset 1 cell, x (G//2)/(G//2-1)
    gy = (0.25 * (ic + 1) - 0.7) * (G // 2) / (G // 2 - 1)
    ex, ey = (gx + 1) * 287 / 2, (gy + 1) * 287 / 2               # source 288 frame
    src = [[(ex + 28) * 200 / 288, ey * 120 / 288], [ex * 200 / 288, (ey + 29) * 120 / 288]]
    out = evaluate_pair(model, _sample((120, 200), (96, 144), src, [[50.25, 47.6], [50.25, 47.6]]), proto)
    (q_hw, r_hw, q, r), = model.calls
    assert q_hw == r_hw == (320, 320)                              # 288 + 2 x 16 zero padding
    assert float(q[0, :, :16].abs().max()) == 0.0 and float(q[0, :, 16:-16, 16:-16].mean()) == pytest.approx(0.75)
    assert float(r[0, :, 16:-16, 16:-16].mean()) == pytest.approx(0.25)     # model(tgt, src)
    assert out["pred"][0].tolist() == pytest.approx([ex, ey], abs=1e-4)
    assert (out["pred"] - out["gt"]).norm(dim=1).tolist() == pytest.approx([28.0, 29.0], abs=1e-4)
    assert out["thresh"]["img"] == 288.0                           # L = 288: 28 is within 0.1 L, 29 is not


def test_sfnet_pfwillow_works_in_the_original_frame_with_the_source_keypoint_box():
    proto = PROTOCOLS["sfnet/pfwillow"]
    G = 6
    g = _affine_grid_values(G, (1.0, 1.0), (0.0, 0.0))             # identity over the grid
    model = GridModel(g, (G, G))
    # target 97 x 131: keypoint (130, 0) -> rounded x == W -> W - 1 = 130 (the published edge rule)
    out = evaluate_pair(model, _sample((50, 80), (97, 131), [[10, 10], [70, 40]], [[130, 0], [60, 48]]), proto)
    q = 130 * (G - 3) / 130                                        # upsampled index at px = 130
    x = (((q + 1) * 2 / (G - 1) - 1) * (G // 2) / (G // 2 - 1) + 1) * 79 / 2
    assert out["pred"][0, 0].item() == pytest.approx(x, abs=1e-4)
    assert out["thresh"]["kpbox"] == 60.0                          # source keypoints span 60 x 30


def test_hpf_resizes_the_longer_side_to_300_downscale_only_and_scales_the_threshold():
    proto = PROTOCOLS["hpf/pfpascal"]
    assert input_scale(proto.resize, (375, 500)) == ((0.6, 0.6), (225, 300))
    assert input_scale(proto.resize, (333, 500))[1] == (199, 300)   # int() truncation, as util.resize
    assert input_scale(proto.resize, (150, 200)) == ((1.0, 1.0), (150, 200))
    model = PixelMapModel(shift=(12.0, -3.0))
    # source 150 x 200 kept; target 375 x 500 -> 225 x 300; L = 500 * 0.6 = 300
    out = evaluate_pair(model, _sample((150, 200), (375, 500), [[100, 50]], [[190, 80]],
                                       tgt_bbox=[10, 20, 110, 270]), proto)
    (q_hw, r_hw, q, r), = model.calls
    assert (q_hw, r_hw) == ((150, 200), (225, 300))
    assert float(q.mean()) == pytest.approx(0.25)                  # S2T: model(src, tgt)
    assert out["pred"][0].tolist() == pytest.approx([112.0, 47.0])
    assert out["gt"][0].tolist() == pytest.approx([114.0, 48.0])
    assert out["thresh"]["img"] == pytest.approx(300.0)
    assert out["thresh"]["bbox"] == pytest.approx(250 * 0.6)


def test_macosnet_applies_its_transform_to_the_target_keypoints_in_the_224_frame():
    proto = PROTOCOLS["macosnet/pfpascal"]
    theta = torch.tensor([[[0.8, 0.1, 0.05], [-0.2, 0.9, 0.1]]])

    def model(a, b):
        model.shapes = (tuple(a.shape[-2:]), tuple(b.shape[-2:]), float(a.mean()))
        return Matches(field=torch.zeros(1, 2, 2, 2), confidence=torch.zeros(1, 2, 2), src_size=a.shape[-2:],
                       tgt_size=b.shape[-2:], extras={"theta_affine": theta, "tps_displacement": None})

    out = evaluate_pair(model, _sample((100, 100), (50, 80), [[1, 1]], [[40, 25]]), proto)
    assert model.shapes[:2] == ((240, 240), (240, 240)) and model.shapes[2] == pytest.approx(0.75)
    tx, ty = 40 * 224 / 80, 25 * 224 / 50
    n = ((tx - 1) * 2 / 223 - 1, (ty - 1) * 2 / 223 - 1)
    w = (0.8 * n[0] + 0.1 * n[1] + 0.05, -0.2 * n[0] + 0.9 * n[1] + 0.1)
    assert out["pred"][0].tolist() == pytest.approx([(w[0] + 1) * 223 / 2 + 1, (w[1] + 1) * 223 / 2 + 1])


def test_scnet_reads_the_flow_at_the_rounded_source_keypoint_in_224x224():
    proto = PROTOCOLS["scnet/pfpascal"]
    model = PixelMapModel(shift=(1.25, 0.0))
    # source 100 x 112: x 73.5 -> 147.0 -> 147; 73.75 -> 147.5 -> 148; 73.25 -> 146.5 -> 147 (MATLAB's
    # round, half away from zero; numpy's would give 146); y 62.5 -> 140
    out = evaluate_pair(model, _sample((100, 112), (100, 100), [[73.5, 62.5], [73.75, 62.5], [73.25, 62.5]],
                                       [[0, 0], [0, 0], [0, 0]]), proto)
    assert model.calls[0][0] == (224, 224)
    assert out["pred"][:, 0].tolist() == pytest.approx([148.25, 149.25, 148.25], abs=1e-6)
    assert out["pred"][:, 1].tolist() == pytest.approx([140.0] * 3, abs=1e-6)
    assert out["thresh"]["img"] == 224.0


def test_prepare_image_resamplers_and_padding():
    img = torch.rand(3, 10, 20)
    resize = PROTOCOLS["ncnet/pfpascal"].resize
    x = prepare_image(img, resize)
    # identity-affine grid_sample of the published loader = align_corners interpolation: corners kept
    assert x.shape == (3, 400, 400)
    assert torch.allclose(x[:, 0, 0], img[:, 0, 0]) and torch.allclose(x[:, -1, -1], img[:, -1, -1])
    y = prepare_image(img, PROTOCOLS["sfnet/pfpascal"].resize, pad=16)
    assert y.shape == (3, 320, 320) and float(y[:, :16].abs().max()) == 0.0


def test_resolve_protocol_paper_uniform_and_explicit_keys():
    assert resolve_protocol("paper", "ncnet", "pf-pascal")[0].key == "ncnet/pfpascal"
    proto, note = resolve_protocol("paper", "sparse-ncnet", "pfpascal")
    assert proto is None and "HPatches" in note and "uniform" in note
    assert resolve_protocol("uniform", "ncnet", "pfpascal") == (None, "")
    assert resolve_protocol("sfnet/pfpascal-bbox", "sfnet", "pfpascal")[0].thresh == "bbox"
    with pytest.raises(ValueError, match="sfnet on pfpascal"):
        resolve_protocol("sfnet/pfpascal-bbox", "hpf", "pfpascal")
    with pytest.raises(ValueError, match="--protocol must be"):
        resolve_protocol("nope", "hpf", "pfpascal")


def test_the_docs_table_is_the_protocol_table():
    doc = (REPO / "docs" / "EVALUATION.md").read_text()
    for line in markdown_table().splitlines():
        assert line in doc, f"docs/EVALUATION.md lacks the protocol table row:\n{line}"


def test_runner_applies_the_paper_protocol_and_records_it(tmp_path):
    """NC-Net's protocol through ``evaluate`` on a PF-PASCAL tree: the fake model maps every target cell to
    the same relative source position (identity on the corner grids), so in the 224 frame the predicted
    source keypoint is the target keypoint itself; per-pair PCK against hand-computed distances."""
    from semcorr.eval.runner import EvalConfig, evaluate
    from test_eval_runner import make_pascal

    make_pascal(tmp_path / "data")
    model = GridModel(_affine_grid_values(5, (1.0, 1.0), (0.0, 0.0)), (5, 5))
    res = evaluate(EvalConfig(method="ncnet", dataset="pfpascal", root=str(tmp_path / "data"), progress=False,
                              figures=False, print_table=False, device="cpu", out=str(tmp_path / "out"),
                              alphas=(0.02, 0.1)),
                   model=lambda_model(model))
    assert res["protocol"]["key"] == "ncnet/pfpascal" and res["protocol"]["thresh"] == "img"
    # pair 0 (all images 20 x 20: 224 / 20 = 11.2 per px): target (2,4),(13,14),(15,4) vs source
    # (2,3),(10,10),(15,4): distances 11.2, 11.2 * 5, 0 against L = 224 -> at 0.02 (4.48): 1/3, at 0.1: 2/3
    g = res["groups"]
    assert g["category/bicycle"]["pck"]["img"]["0.02"] == pytest.approx(1 / 3)
    assert g["category/bicycle"]["pck"]["img"]["0.1"] == pytest.approx(2 / 3)
    assert g["category/cat"]["pck"]["img"]["0.02"] == pytest.approx(1.0)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["protocol"] == "ncnet/pfpascal" and cfg["untrained"] is None
    assert all(len(call[0]) == 2 and call[0] == (400, 400) for call in model.calls)


def lambda_model(fn):
    class Wrapped(torch.nn.Module):
        def match(self, a, b):
            return fn(a, b)
    return Wrapped()


def test_every_protocol_describes_itself_as_json():
    for p in PROTOCOLS.values():
        d = json.loads(json.dumps(p.describe()))
        assert d["key"] == p.key and d["published"] and d["reference"]
        assert math.isfinite(min(p.alphas))


def test_hpf_caltech_transfers_the_polygon_vertices_and_rasterises_both(tmp_path):
    """HPF's eval_caltech: the source polygon's vertices go through the matches (here: 2 px to the right),
    the predicted and the target polygons are rasterised at the (resized) target size, LT-ACC and IoU."""
    import csv as _csv

    import imageio.v3 as iio
    import numpy as np

    from semcorr.eval.runner import EvalConfig, evaluate

    root = tmp_path / "Caltech-101"
    for cat in ("Faces", "ant"):
        for k in (1, 2):
            path = root / "101_ObjectCategories" / cat / f"image_000{k}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, np.full((10, 12, 3), 128, np.uint8))
    with open(root / "test_pairs_caltech_with_category.csv", "w", newline="") as f:
        w = _csv.writer(f)
        w.writerow(["source_image", "target_image", "class", "XA", "YA", "XB", "YB"])
        # Faces: the target object is where the source one was: the shifted prediction overlaps 20 of 40 px
        w.writerow(["101_ObjectCategories/Faces/image_0001.jpg", "101_ObjectCategories/Faces/image_0002.jpg", 1,
                    "2,7,7,2", "1,1,5,5", "2,7,7,2", "1,1,5,5"])
        # ant: the target object moved 2 px right, as the matches say: exact
        w.writerow(["101_ObjectCategories/ant/image_0001.jpg", "101_ObjectCategories/ant/image_0002.jpg", 8,
                    "2,7,7,2", "1,1,5,5", "4,9,9,4", "1,1,5,5"])
    model = PixelMapModel(shift=(2.0, 0.0))
    res = evaluate(EvalConfig(method="hpf", dataset="caltech", root=str(root), progress=False, figures=False,
                              print_table=False, device="cpu"), model=lambda_model(model), log=lambda s: None)
    assert res["protocol"]["key"] == "hpf/caltech" and res["protocol"]["task"] == "polygon"
    g = res["groups"]
    assert g["category/Faces"]["iou"] == pytest.approx(20 / 40)
    assert g["category/Faces"]["ltacc"] == pytest.approx(1 - 20 / 120)
    assert g["category/ant"]["iou"] == pytest.approx(1.0) and g["category/ant"]["ltacc"] == pytest.approx(1.0)
    assert "locerr" not in g["all"]


def test_cli_lists_the_protocols(capsys):
    from semcorr.cli import main

    assert main(["eval", "--protocol", "list"]) == 0
    out = capsys.readouterr().out
    assert all(key in out for key in PROTOCOLS)
    assert "ncnet/pfpascal" in out and "T2S" in out and "78.9" in out
