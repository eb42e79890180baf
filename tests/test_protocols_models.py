"""Every paper protocol with its real model (small offline variants) through ``semcorr eval`` on benchmark
fixtures in the published layouts: the model is called with the protocol's input sizes, in the protocol's
direction, and the records count every keypoint. Two end-to-end checks where the answer is known without
trained weights: MaCoSNet's untrained regressors output the identity transform, so under its T2S protocol
every target keypoint of a photo pair must land exactly on the source keypoint; HPF on DAISY hyperpixels
(no weights) must match a photo to itself."""
import csv
import json
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from semcorr.eval.protocols import PROTOCOLS
from semcorr.eval.runner import EvalConfig, evaluate, read_records
from semcorr.models import build_model


def _photo(h, w):
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float()
    out = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
    return out.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


# keypoints in relative coordinates of the astronaut photo (face, badge, hands, flag, helmet)
REL = np.array([[0.45, 0.25], [0.55, 0.27], [0.30, 0.62], [0.70, 0.55], [0.20, 0.15], [0.62, 0.12],
                [0.50, 0.80], [0.85, 0.85], [0.15, 0.90], [0.40, 0.45]])


def _kps(h, w, n):
    return REL[:n] * np.array([w - 1, h - 1])


def make_pascal(root, src_hw, tgt_hw, n=6, tgt_gain=1.0):
    """HPF's PF-PASCAL layout: one cat pair, the astronaut photo at two sizes (the target's intensities
    times ``tgt_gain``), keypoints at the same relative positions, boxes around them."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations" / "cat").mkdir(parents=True)
    for name, (h, w), gain in (("a", src_hw, 1.0), ("b", tgt_hw, tgt_gain)):
        iio.imwrite(root / "JPEGImages" / f"{name}.png", (_photo(h, w) * gain).astype(np.uint8))
        k = _kps(h, w, n)
        scipy.io.savemat(root / "Annotations" / "cat" / f"{name}.mat",
                         {"kps": k, "bbox": np.array([[k[:, 0].min(), k[:, 1].min(), k[:, 0].max(), k[:, 1].max()]])})
    with open(root / "test_pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_image", "target_image", "class"])
        w.writerow(["JPEGImages/a.png", "JPEGImages/b.png", 8])


def make_willow(root, src_hw, tgt_hw, tgt_gain=1.0):
    (root / "car(G)").mkdir(parents=True)
    row = ["PF-dataset/car(G)/a.png", "PF-dataset/car(G)/b.png"]
    for name, (h, w), gain in (("a", src_hw, 1.0), ("b", tgt_hw, tgt_gain)):
        iio.imwrite(root / "car(G)" / f"{name}.png", (_photo(h, w) * gain).astype(np.uint8))
    ka, kb = _kps(*src_hw, 10), _kps(*tgt_hw, 10)
    row += list(ka[:, 0]) + list(ka[:, 1]) + list(kb[:, 0]) + list(kb[:, 1])
    with open(root / "test_pairs_pf.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["imageA", "imageB"] + [f"c{i}" for i in range(40)])
        w.writerow(row)


class Recorder(torch.nn.Module):
    """Delegates to a real model and records the inputs of each call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def match(self, a, b):
        self.calls.append((tuple(a.shape[-2:]), tuple(b.shape[-2:]), float(a.mean()), float(b.mean())))
        return self.model.match(a, b)


# offline variants: the protocol's wiring, not the published weights, is under test here
CASES = [("ncnet", "pfpascal", dict(backbone="resnet50", weights=None, image_size=64)),
         ("pmnc", "pfpascal", dict(backbone="daisy", image_size=64)),
         ("hpf", "pfpascal", dict(backbone="daisy")), ("hpf", "pfwillow", dict(backbone="daisy")),
         ("sfnet", "pfpascal", dict(backbone="tiny")), ("sfnet", "pfwillow", dict(backbone="tiny")),
         ("macosnet", "pfpascal", dict(backbone="tiny")), ("macosnet", "pfwillow", dict(backbone="tiny"))]


def _run(tmp_path, method, dataset, kwargs, protocol="paper", tgt_gain=1.0, **cfg):
    root = tmp_path / dataset
    if not root.exists():
        (make_pascal if dataset == "pfpascal" else make_willow)(root, (120, 160), (90, 200), tgt_gain=tgt_gain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # random backbones say so; not under test here
        model = Recorder(build_model(method, **kwargs))
        res = evaluate(EvalConfig(method=method, dataset=dataset, root=str(root), protocol=protocol,
                                  progress=False, figures=False, print_table=False, device="cpu",
                                  out=str(tmp_path / f"out-{method}-{dataset}"), **cfg), model=model,
                       log=lambda s: None)
    return res, model


@pytest.mark.parametrize("method,dataset,kwargs", CASES, ids=[f"{m}-{d}" for m, d, _ in CASES])
def test_paper_protocol_runs_with_its_model(tmp_path, method, dataset, kwargs):
    res, model = _run(tmp_path, method, dataset, kwargs, tgt_gain=0.5)     # a darker target
    proto = PROTOCOLS[res["protocol"]["key"]]
    assert (proto.method, proto.dataset) == (method, dataset)
    (q_hw, r_hw, q_mean, r_mean), = model.calls
    if proto.resize.rule == "square":
        side = proto.resize.size + 2 * proto.pad
        assert q_hw == r_hw == (side, side)
    else:                                        # HPF: both photos under 300 px: kept as they are
        assert {q_hw, r_hw} == {(120, 160), (90, 200)}
    # S2T runs model(src, tgt), T2S model(tgt, src): the darker target comes first for T2S
    assert (q_mean < r_mean) == (proto.direction == "t2s")
    if proto.resize.rule != "square":
        assert q_hw == ((120, 160) if proto.direction == "s2t" else (90, 200))
    rec, = read_records(tmp_path / f"out-{method}-{dataset}").values()
    assert rec["n_valid"] == (6 if dataset == "pfpascal" else 10)
    kind = proto.thresh
    assert rec["thresh"][kind] > 0
    for a, c in zip(res["curve_alphas"], rec["correct"][kind]):
        assert 0 <= c <= rec["n_valid"]
    assert res["groups"]["all"]["pck"][kind]


def test_macosnet_identity_transform_lands_exactly_under_its_t2s_protocol(tmp_path):
    # untrained, MaCoSNet's regressors output the identity: in the protocol's 224x224 frame a target
    # keypoint maps to the same relative position in the source, which is where the source keypoint is
    res, model = _run(tmp_path, "macosnet", "pfpascal", dict(backbone="tiny"))
    assert model.calls[0][:2] == ((240, 240), (240, 240))
    assert res["groups"]["all"]["pck"]["img"]["0.01"] == pytest.approx(1.0)
    # the same run read source -> target on the uniform setting is exact as well (identity both ways)
    uni, _ = _run(tmp_path, "macosnet", "pfpascal", dict(backbone="tiny"), protocol="uniform")
    assert uni["protocol"]["key"] == "uniform" and uni["groups"]["all"]["pck"]["img"]["0.01"] == pytest.approx(1.0)


def test_hpf_daisy_matches_a_photo_to_itself_under_its_protocol(tmp_path):
    root = tmp_path / "same"
    make_pascal(root, (150, 200), (150, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate(EvalConfig(method="hpf", dataset="pfpascal", root=str(root), progress=False, figures=False,
                                  print_table=False, device="cpu", model_kwargs={"backbone": "daisy"}),
                       log=lambda s: None)
    assert res["protocol"]["key"] == "hpf/pfpascal"
    assert res["groups"]["all"]["pck"]["img"]["0.1"] >= 5 / 6


def test_results_name_the_protocol_field_by_field(tmp_path):
    make_willow(tmp_path / "willow", (120, 160), (90, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(EvalConfig(method="sfnet", dataset="pfwillow", root=str(tmp_path / "willow"), progress=False,
                            figures=False, print_table=False, device="cpu", model_kwargs={"backbone": "tiny"},
                            out=str(tmp_path / "out")), log=lambda s: None)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    p = saved["protocol"]
    assert p["key"] == "sfnet/pfwillow" and "16 px zero padding" in p["input"] and p["thresh"] == "kpbox"
    assert "target -> source" in p["direction"] and saved["primary_thresh"] == "kpbox"
    assert saved["untrained"].startswith("UNTRAINED: sfnet")


def test_protocol_run_draws_its_own_view_of_the_pairs(tmp_path):
    make_pascal(tmp_path / "pascal", (120, 160), (90, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(EvalConfig(method="macosnet", dataset="pfpascal", root=str(tmp_path / "pascal"), progress=False,
                            print_table=False, device="cpu", model_kwargs={"backbone": "tiny"},
                            out=str(tmp_path / "out")), log=lambda s: None)
    img = iio.imread(tmp_path / "out" / "qualitative.png")
    assert img.ndim == 3 and img[..., :3].std() > 10
    assert (tmp_path / "out" / "pck_curve.png").is_file()


def _published_ncnet_t2s(corr, tgt_kps_224):
    """NC-Net's eval_pf_pascal.py read-out, float64, written from lib/point_tnf.py: corr_to_matches(corr,
    do_softmax=True) (for each target cell the softmax over the source cells, its argmax, grids
    linspace(-1, 1, n)), then bilinearInterpPointTnf at the normalised target keypoints, then
    PointsToPixelCoords with the 224 frame (1-based)."""
    _, _, fs1, fs2, fs3, fs4 = corr.shape
    nc = torch.softmax(corr.double().reshape(1, fs1 * fs2, fs3, fs4), dim=1)
    _, idx = nc.max(dim=1)
    idx = idx.reshape(-1)
    xa = torch.linspace(-1, 1, fs2, dtype=torch.float64)[idx % fs2]
    ya = torch.linspace(-1, 1, fs1, dtype=torch.float64)[idx // fs2]
    grid = torch.linspace(-1, 1, fs4, dtype=torch.float64)          # square grids, as the published code
    out = []
    for x, y in tgt_kps_224:
        t = torch.tensor([(x - 1 - 223 / 2) * 2 / 223, (y - 1 - 223 / 2) * 2 / 223], dtype=torch.float64)
        xm = max(int(((t[0] - grid) > 0).sum()) - 1, 0)
        ym = max(int(((t[1] - grid) > 0).sum()) - 1, 0)
        xp, yp = xm + 1, ym + 1
        corners = {(xm, ym): (xp, yp), (xp, yp): (xm, ym), (xp, ym): (xm, yp), (xm, yp): (xp, ym)}
        num, den = torch.zeros(2, dtype=torch.float64), 0.0
        for (cx, cy), (ox, oy) in corners.items():
            wgt = abs(float(t[0] - grid[ox])) * abs(float(t[1] - grid[oy]))
            k = cy * fs4 + cx
            num += wgt * torch.stack([xa[k], ya[k]])
            den += wgt
        n = num / den
        out.append([(float(n[0]) * 223 / 2 + 1 + 223 / 2), (float(n[1]) * 223 / 2 + 1 + 223 / 2)])
    return torch.tensor(out, dtype=torch.float64)


def test_ncnet_protocol_equals_the_published_readout_on_our_volume(tmp_path):
    """Our NC-Net run as model(tgt, src) under ncnet/pfpascal transfers the keypoints exactly as the published
    script reads the volume of model(src, tgt) target -> source (the symmetric consensus makes the swap
    exact)."""
    from semcorr.data.datasets import build_dataset
    from semcorr.eval.protocol_geometry import evaluate_pair, prepare_image

    make_pascal(tmp_path / "pascal", (120, 160), (90, 200))
    sample = build_dataset("pfpascal", tmp_path / "pascal", size=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = build_model("ncnet", backbone="resnet50", weights=None, image_size=128)
    proto = PROTOCOLS["ncnet/pfpascal"]
    out = evaluate_pair(lambda a, b: model.match(a, b), sample, proto)
    src_in = prepare_image(sample["src_img"], proto.resize)[None]
    tgt_in = prepare_image(sample["tgt_img"], proto.resize)[None]
    with torch.no_grad():
        corr = model.correlation(src_in, tgt_in)[0]                   # (1, 1, Hs, Ws, Ht, Wt), source-major
    n = sample["n_kps"]
    tgt_224 = (sample["tgt_kps"][:n].double() * torch.tensor([224 / 200, 224 / 90], dtype=torch.float64)).tolist()
    ref = _published_ncnet_t2s(corr, tgt_224)
    assert corr.shape[-1] == 8
    assert torch.allclose(out["pred"], ref, atol=1e-4), (out["pred"], ref)


def test_sfnet_protocol_equals_the_published_readout_of_grid_t2s(tmp_path):
    """Our SFNet run as model(tgt, src) under sfnet/pfwillow gives what SFNet's eval_willow.py computes from
    grid_T2S of net(src, tgt): crop the border cells, scale by (n//2)/(n//2 - 1), upsample to the target
    image (align_corners), read at the rounded target keypoint, (g + 1) * (W_src - 1) / 2 (float64 here)."""
    from semcorr.data.datasets import build_dataset
    from semcorr.eval.protocol_geometry import evaluate_pair, prepare_image

    make_willow(tmp_path / "willow", (120, 160), (90, 200))
    sample = build_dataset("pfwillow", tmp_path / "willow", size=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = build_model("sfnet", backbone="tiny")
    proto = PROTOCOLS["sfnet/pfwillow"]
    out = evaluate_pair(lambda a, b: model.match(a, b), sample, proto)
    src_in = prepare_image(sample["src_img"], proto.resize, 16)[None]
    tgt_in = prepare_image(sample["tgt_img"], proto.resize, 16)[None]
    with torch.no_grad():
        g = model.flows(src_in, tgt_in)["grid_T2S"].double()           # (1, Ht, Wt, 2) over the source grid
    n = g.shape[1]
    small = g[:, 1:-1, 1:-1].clone()
    small[..., 0] *= (n // 2) / (n // 2 - 1)
    small[..., 1] *= (n // 2) / (n // 2 - 1)
    up = F.interpolate(small.permute(0, 3, 1, 2), size=(90, 200), mode="bilinear", align_corners=True)[0]
    ref = []
    for x, y in sample["tgt_kps"][: sample["n_kps"]].tolist():
        px, py = int(np.round(x)), int(np.round(y))
        px, py = (px - 1 if px == 200 else px), (py - 1 if py == 90 else py)
        ref.append([(float(up[0, py, px]) + 1) * (160 - 1) / 2, (float(up[1, py, px]) + 1) * (120 - 1) / 2])
    assert n == 20
    assert torch.allclose(out["pred"], torch.tensor(ref, dtype=torch.float64), atol=1e-3), (out["pred"], ref)


def test_explicit_protocol_key_sfnet_bbox_measures_against_the_source_box(tmp_path, capsys):
    from semcorr.cli import main

    make_pascal(tmp_path / "pascal", (120, 160), (90, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["eval", "-m", "sfnet", "-d", "pfpascal", "-r", str(tmp_path / "pascal"), "--protocol",
                   "sfnet/pfpascal-bbox", "--model-arg", "backbone=tiny", "--out", str(tmp_path / "out"),
                   "--no-progress", "--no-figures", "--device", "cpu"])
    assert rc == 0
    assert "protocol sfnet/pfpascal-bbox" in capsys.readouterr().out
    rec, = read_records(tmp_path / "out").values()
    k = _kps(120, 160, 6)                      # T2S: the error and L live in the source, original frame
    side = max(k[:, 0].max() - k[:, 0].min(), k[:, 1].max() - k[:, 1].min())
    assert rec["thresh"]["bbox"] == pytest.approx(side)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["primary_thresh"] == "bbox"
