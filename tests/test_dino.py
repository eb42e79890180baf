"""The zero-shot `dino` method: readouts against float64 transcriptions of GeoAware-SC's released
``utils/utils_correspondence.py`` (get_flow, soft_argmax, apply_gaussian_kernel), dense vs tiled paths, the
sparse consensus against a dense 4D reference, letterbox geometry, weights (official layout / UNTRAINED), CLI."""
import functools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("timm", reason="timm is a declared dependency (requirements.txt); install it")

from semcorr.models import MODELS, build_model, untrained_line  # noqa: E402
from semcorr.models.dino import DinoMatcher, letterbox, sparse_consensus_argmax  # noqa: E402

from test_backbones_vit import official_state_dict  # noqa: E402


# ---- float64 transcription of the released code (square grids of n x n cells, as it assumes) ----------------
def ref_soft_argmax(corr, beta=0.02):
    """soft_argmax: corr (B, Ht*Wt, Hs, Ws) -> grid_x, grid_y (B, 1, Hs, Ws)."""
    b, htwt, h, w = corr.size()
    ht, wt = int(np.sqrt(htwt)), int(np.sqrt(htwt))
    x_normal = torch.tensor(np.linspace(-1, 1, w), dtype=torch.float64)
    y_normal = torch.tensor(np.linspace(-1, 1, h), dtype=torch.float64)
    M, _ = corr.max(dim=1, keepdim=True)
    e = torch.exp((corr - M) / beta)
    corr = (e / e.sum(dim=1, keepdim=True)).view(-1, ht, wt, h, w)
    grid_x = (corr.sum(dim=1) * x_normal.view(1, w, 1, 1)).sum(dim=1, keepdim=True)
    grid_y = (corr.sum(dim=2) * y_normal.view(1, h, 1, 1)).sum(dim=1, keepdim=True)
    return grid_x, grid_y


def ref_get_flow(corr, flow_window, n):
    """get_flow(corr (Ns, Nt), flow_window, num_patches=n) -> (1, n, n, 2) in patch units (x, y)."""
    corr = corr.clone()
    if flow_window > 0:
        idx = torch.argmax(corr, dim=-1)
        mx, my = idx % n, idx // n
        c3 = corr.view(-1, n, n)
        r = torch.arange(-flow_window, flow_window + 1)
        ox, oy = torch.meshgrid(r, r, indexing="ij")
        wx = (mx[:, None] + ox.flatten()[None]).clamp(0, n - 1)
        wy = (my[:, None] + oy.flatten()[None]).clamp(0, n - 1)
        mask = torch.zeros_like(c3)
        mask[torch.arange(c3.shape[0])[:, None], wy, wx] = 1
        corr = (c3 * mask).view(n * n, n * n)
    elif flow_window < 0:  # apply_gaussian_kernel(corr.T as (1, Nt, n, n), sigma=-flow_window)
        c = corr.permute(1, 0).view(1, n * n, n, n)
        i = c.max(dim=1)[1]
        iy, ix = (i // n).view(1, 1, 1, n, n).double(), (i % n).view(1, 1, 1, n, n).double()
        xs = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1, 1)
        ys = torch.arange(n, dtype=torch.float64).view(1, n, 1, 1, 1)
        g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * flow_window ** 2)).view(1, n * n, n, n)
        corr = (g * c).view(n * n, n * n).permute(1, 0)
    x = corr.view(-1, n, n, n * n)
    gx, gy = ref_soft_argmax(x.permute(0, 3, 1, 2))
    f = torch.cat((gx, gy), 1)
    f = torch.stack([(f[:, 0] + 1) * (n - 1) / 2, (f[:, 1] + 1) * (n - 1) / 2], 1)
    return f.permute(0, 2, 3, 1)


def normalized_sim(fs, ft):
    """GeoAware-SC: each descriptor divided by its norm, then one matmul -> (Ns, Nt)."""
    a = fs[0].reshape(fs.shape[1], -1).t()
    b = ft[0].reshape(ft.shape[1], -1).t()
    return (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).t()


def smooth_features(n, c=24, seed=0):
    """Spatially smooth random maps (like real features: neighbours alike, so windows matter)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(1, c, n + 4, n + 4, generator=g, dtype=torch.float64)
    return F.avg_pool2d(f, 5, stride=1)


def model(**kw):
    kw.setdefault("weights", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw.setdefault("img_size", 56)
        return DinoMatcher(backbone="dinov2_vits14", depth=1, **kw)


@pytest.mark.parametrize("window", [1, 5])
def test_window_readout_equals_released_get_flow_dense_and_banded(window):
    n = 12
    fs, ft = smooth_features(n, seed=1), smooth_features(n, seed=2)
    want = ref_get_flow(normalized_sim(fs, ft), window, n)
    for cells in (n ** 4, 0):  # the full volume at once, and one band of source rows at a time
        m = model(readout="window", window=window, dense_max_cells=cells, band_bytes=1)
        assert m._band_rows(n, n, n * n, 8) == (n if cells else 1)
        field, conf, centre = m.canvas_matches(fs, ft)
        torch.testing.assert_close(field, want, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(conf.reshape(-1), normalized_sim(fs, ft).max(-1).values, rtol=1e-6, atol=1e-6)


def test_window_readout_with_all_negative_window():
    # rows whose window is entirely negative: the masked-out zeros hold the maximum (m = 0)
    n = 6
    ft = smooth_features(n, seed=4).abs()  # all targets in the positive orthant
    fs = smooth_features(n, seed=3).abs()
    fs[:, :, : n // 2] *= -1  # the upper source rows anti-correlate with every target
    sim = normalized_sim(fs, ft)
    assert (sim.max(-1).values < 0).sum() == n * n // 2
    m = model(readout="window", window=1)
    torch.testing.assert_close(m.canvas_matches(fs, ft)[0], ref_get_flow(sim, 1, n), rtol=1e-6, atol=1e-6)


def test_kernel_readout_equals_released_gaussian_mode():
    n = 10
    fs, ft = smooth_features(n, seed=5), smooth_features(n, seed=6)
    m = model(readout="kernel", sigma=3.0)
    field = m.canvas_matches(fs, ft)[0]
    torch.testing.assert_close(field, ref_get_flow(normalized_sim(fs, ft), -3, n), rtol=1e-6, atol=1e-6)


def test_argmax_readout_and_tiled_refusals():
    n = 8
    fs, ft = smooth_features(n, seed=7), smooth_features(n, seed=8)
    idx = normalized_sim(fs, ft).argmax(-1)
    field, _, centre = model(readout="argmax").canvas_matches(fs, ft)
    assert torch.equal(centre.reshape(-1), idx)
    assert torch.equal(field.reshape(-1, 2), torch.stack([idx % n, idx // n], -1).double())
    with pytest.raises(ValueError, match="dense_max_cells"):
        model(readout="kernel", dense_max_cells=0, band_bytes=1).canvas_matches(fs, ft)
    with pytest.raises(ValueError, match="dense_max_cells"):
        model(mutual=True, dense_max_cells=0, band_bytes=1).canvas_matches(fs, ft)
    # banded argmax = dense argmax
    _, _, banded = model(readout="argmax", dense_max_cells=0, band_bytes=1).canvas_matches(fs, ft)
    assert torch.equal(banded.reshape(-1), idx)


def test_mutual_option_uses_ncnet_filter():
    from semcorr_ext import ops

    n = 6
    fs, ft = smooth_features(n, seed=9), smooth_features(n, seed=10)
    corr = normalized_sim(fs, ft).clamp_min(0)
    mut = corr * (corr / (corr.max(1, keepdim=True).values + 1e-5)) * (corr / (corr.max(0, keepdim=True).values + 1e-5))
    field, conf, _ = model(readout="window", window=2, mutual=True).canvas_matches(fs, ft)
    torch.testing.assert_close(field, ref_get_flow(mut, 2, n), rtol=1e-6, atol=1e-6)
    assert ops is not None


def test_sparse_consensus_pick_equals_dense_reference():
    n, k = 5, 3
    fs, ft = smooth_features(n, c=8, seed=11), smooth_features(n, c=8, seed=12)
    sim = normalized_sim(fs, ft)  # (Ns, Nt)
    cand = torch.zeros_like(sim, dtype=torch.bool)
    cand.scatter_(1, sim.topk(k, 1).indices, True)
    cand.scatter_(0, sim.topk(k, 0).indices, True)
    vol = (sim.clamp_min(0) * cand).view(n, n, n, n)
    padded = F.pad(vol, (1, 1) * 4)
    score = sum(padded[a:a + n, b:b + n, c:c + n, d:d + n]
                for a in range(3) for b in range(3) for c in range(3) for d in range(3)).reshape(n * n, n * n)
    score = score.masked_fill(~cand, float("-inf"))
    want = score.argmax(1)  # first maximum = lowest target index
    got = sparse_consensus_argmax(fs, ft, k)
    assert torch.equal(got.reshape(-1), want)
    # and it changes picks somewhere relative to the plain argmax (the filter does something)
    assert not torch.equal(want, sim.argmax(1))


def test_letterbox_follows_geoaware_resize():
    img = torch.rand(2, 3, 30, 50)
    canvas, scale, pad = letterbox(img, 56)
    assert canvas.shape == (2, 3, 56, 56)
    new_h = int(np.around(56 * 30 / 50))  # 34
    assert pad == (0.0, float((56 - new_h) // 2)) and scale == (56 / 50, new_h / 30)
    assert canvas[:, :, :pad[1].__int__()].abs().sum() == 0 and canvas[:, :, int(pad[1]) + new_h:].abs().sum() == 0
    from PIL import Image
    u8 = (img[1] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    want = np.asarray(Image.fromarray(u8).resize((56, new_h), Image.Resampling.LANCZOS))
    got = (canvas[1, :, int(pad[1]):int(pad[1]) + new_h] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(got, want)
    _, _, pad_p = letterbox(torch.rand(1, 3, 50, 30), 56)
    assert pad_p == (float((56 - new_h) // 2), 0.0)


class PatchCode(nn.Module):
    """A stride-14 'backbone' whose features identify the image content of each patch (fixed random conv)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 14, stride=14)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return [self.conv(x)]


@pytest.mark.parametrize("size", [(40, 70), (70, 40), (56, 56)])
def test_same_image_gives_identity_matches_through_the_letterbox(size):
    g = torch.Generator().manual_seed(1)
    img = F.interpolate(torch.rand(1, 3, 10, 10, generator=g), size=size, mode="nearest")
    img = (img + 0.2 * torch.rand(1, 3, *size, generator=g)).clamp(0, 1)
    m = DinoMatcher(backbone=PatchCode(), img_size=140, readout="argmax")
    out = m.match(img, img)
    assert out.src_size == size and out.field.shape[1:3] == (round(size[0] * 140 / max(size) / 14),
                                                             round(size[1] * 140 / max(size) / 14))
    kps = torch.tensor([[5.0, 5.0], [size[1] / 2, size[0] / 3], [size[1] - 8.0, size[0] - 6.0]])
    err = (out.transfer_keypoints(kps) - kps).norm(dim=-1)
    assert err.max() < 0.5 * 14 * max(size) / 140 + 1e-3  # within half a cell (bilinear between cell matches)


def test_official_weights_load_and_untrained_marking(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    sd = official_state_dict(depth=2)
    torch.save(sd, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UNTRAINED warning with weights
        m = build_model("dino", backbone="dinov2_vits14", weights=str(path), depth=2, img_size=56)
    assert m.untrained_parts() == [] and untrained_line(m) is None
    torch.testing.assert_close(m.backbone.vit.blocks[0].attn.qkv.weight.detach(), sd["blocks.0.attn.qkv.weight"])
    m2 = build_model("dino", backbone="dinov2_vits14", checkpoint=str(path), depth=2, img_size=56)
    assert m2.untrained_parts() == []
    with pytest.warns(UserWarning, match="UNTRAINED: dino has random weights in backbone"):
        m3 = build_model("dino", backbone="dinov2_vits14", depth=2, img_size=56)  # auto, empty hub cache
    assert m3.untrained_parts() == ["backbone"]
    out = m.match(torch.rand(1, 3, 50, 60), torch.rand(1, 3, 60, 50))
    assert torch.isfinite(out.field).all() and out.field.shape == (1, 3, 4, 2)


def test_bad_arguments():
    for kw, word in [(dict(img_size=50), "img_size"), (dict(readout="soft"), "readout"),
                     (dict(consensus="dense"), "consensus"), (dict(window=-1), "window"), (dict(topk=0), "topk")]:
        with pytest.raises(ValueError, match=word):
            model(**kw)
    with pytest.raises(ValueError, match="backbone"):
        DinoMatcher(backbone="resnet50")


def test_cli_match_with_official_layout_file(tmp_path, capsys, monkeypatch):
    from semcorr import cli

    # the published network is ViT-S/14 at 840 px; the wiring is what this tests, so a 2-block ViT-S at 112 px
    monkeypatch.setitem(MODELS, "dino", functools.partial(DinoMatcher, depth=2, img_size=112))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(official_state_dict(depth=2), path)
    out_png = tmp_path / "m.png"
    assert cli.main(["match", "--method", "dino", "--backbone", "dinov2_vits14", "--weights", str(path),
                     "--size", "96", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "method:     dino (backbone dinov2_vits14)" in out and "UNTRAINED" not in out and out_png.exists()
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert cli.main(["match", "--method", "dino", "--backbone", "dinov2_vits14", "--size", "96",
                         "--out", str(tmp_path / "u.png")]) == 0
    assert "UNTRAINED: dino has random weights in backbone" in capsys.readouterr().out


def test_eval_on_spair_uses_the_per_keypoint_bbox_protocol(tmp_path):
    from semcorr.eval.protocols import resolve_protocol
    from semcorr.eval.runner import EvalConfig, evaluate
    from test_datasets import make_spair

    proto, _ = resolve_protocol("paper", "dino", "spair")
    assert (proto.key, proto.thresh, proto.average, proto.direction, proto.alphas[0]) == \
        ("dino/spair", "bbox", "keypoint", "s2t", 0.1)
    make_spair(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate(EvalConfig(method="dino", dataset="spair", root=str(tmp_path / "data"), progress=False,
                                  figures=False, print_table=False, device="cpu", out=str(tmp_path / "out"),
                                  model_kwargs=dict(backbone="dinov2_vits14", depth=1, img_size=56, weights=None)))
    assert res["protocol"]["key"] == "dino/spair" and res["protocol"]["average"] == "keypoint"
    assert res["untrained"].startswith("UNTRAINED: dino")
    assert "pooled keypoints" in res["pck_average"]


def test_consensus_centres_are_used_band_by_band():
    n = 7
    fs, ft = smooth_features(n, c=8, seed=13), smooth_features(n, c=8, seed=14)
    whole = model(consensus="sparse", topk=3).canvas_matches(fs, ft)
    banded = model(consensus="sparse", topk=3, dense_max_cells=0, band_bytes=1).canvas_matches(fs, ft)
    assert torch.equal(whole[2], banded[2])
    assert torch.equal(whole[2].reshape(-1), sparse_consensus_argmax(fs, ft, 3).reshape(-1))
    torch.testing.assert_close(whole[0], banded[0], rtol=0, atol=1e-9)
    # the window sits on the consensus centre, the confidence stays the plain best similarity
    torch.testing.assert_close(whole[1].reshape(-1), normalized_sim(fs, ft).max(-1).values, rtol=1e-6, atol=1e-6)
