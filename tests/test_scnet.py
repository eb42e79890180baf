"""SCNet: the released scoring (A, AG, AG+) against a float64 reference written from k-han/SCNet's MatConvNet
code, the Hough binning of vl_GeoVote on known boxes, the released vote backward, the model API."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semcorr.models import build_model
from semcorr.models import scnet as sc
from semcorr.models.scnet import geometry

# ---- float64 reference of the released forward (numpy loops, MATLAB conventions) ----------------------------


def ref_roipool(fmap, boxes0, stride=16, sub=7):
    """vl_nnroipool 'max' with transform 1/stride on 1-based boxes [x1 y1 x2 y2] (fmap (C, H, W))."""
    C, H, W = fmap.shape
    out = np.zeros((len(boxes0), C, sub, sub))
    T = 1.0 / stride
    for r, b in enumerate(np.asarray(boxes0, dtype=np.float64) + 1):
        u1, v1, u2, v2 = T * (b[0] - 1) + 1, T * (b[1] - 1) + 1, T * (b[2] - 1) + 1, T * (b[3] - 1) + 1
        sw, sh = int(math.floor(u1 + 0.5)) - 1, int(math.floor(v1 + 0.5)) - 1
        ew, eh = int(math.floor(u2 + 0.5)) - 1, int(math.floor(v2 + 0.5)) - 1
        rh, rw = max(eh - sh + 1, 1), max(ew - sw + 1, 1)
        bh, bw = rh / sub, rw / sub
        for pw in range(sub):
            ws = min(max(int(math.floor(pw * bw)) + sw, 0), W)
            we = min(max(int(math.ceil((pw + 1) * bw)) + sw, 0), W)
            for ph in range(sub):
                hs = min(max(int(math.floor(ph * bh)) + sh, 0), H)
                he = min(max(int(math.ceil((ph + 1) * bh)) + sh, 0), H)
                if he > hs and we > ws:
                    out[r, :, ph, pw] = fmap[:, hs:he, ws:we].reshape(C, -1).max(1)
    return out


def ref_fc_l2(pooled, f_mat, b):
    """cnv_fc (a 7x7 conv with MATLAB (H, W, Cin, Cout) filters) then vl_nnl2norm (eps 1e-10)."""
    y = np.einsum("rchw,hwcd->rd", pooled, f_mat) + b[None]
    return y / np.sqrt((y * y).sum(1, keepdims=True) + 1e-10)


def ref_geovote(A, boxes_a0, boxes_b0, hw_a, hw_b):
    """vl_nnhoughvote forward: max(A - 0.4, 0) voted by vl_GeoVote's loops, + 0.01."""
    vote = np.maximum(A - 0.4, 0)

    def frames(b0):
        b = np.asarray(b0, dtype=np.float64) + 1
        c = np.stack([(b[:, 2] + b[:, 0]) / 2, (b[:, 3] + b[:, 1]) / 2], 1)
        return c, b[:, 2:] - c

    ca, ha = frames(boxes_a0)
    cb, hb = frames(boxes_b0)
    Ha, Wa = hw_a
    Hb, Wb = hw_b
    width, height = Wb * 2.0, Hb * 2.0
    cell = max(math.sqrt(width * height / 8000), 5)
    nx, ny, ns = int(math.floor(width / cell * 0.2 + 0.5)), int(math.floor(height / cell * 0.2 + 0.5)), 40
    xe, ye, se = np.linspace(1, width, nx + 1), np.linspace(1, height, ny + 1), np.linspace(-4, 4, ns + 1)
    histo = np.zeros(ny * nx * ns)
    table = np.zeros(A.shape, dtype=np.int64)
    for j in range(len(ca)):
        xt, yt = (Wa - ca[j, 0]) / ha[j, 0], (Ha - ca[j, 1]) / ha[j, 1]
        st = ha[j, 0] * ha[j, 1]
        xv, yv = hb[:, 0] * xt + cb[:, 0], hb[:, 1] * yt + cb[:, 1]
        sv = np.log2(np.abs(hb[:, 0] * hb[:, 1] / st))
        bx, by, bs = (np.searchsorted(e, v, side="right") for e, v in ((xe, xv), (ye, yv), (se, sv)))
        ok = (bx >= 1) & (bx <= nx) & (by >= 1) & (by <= ny) & (bs >= 1) & (bs <= ns)
        ratio = (hb[:, 0] / hb[:, 1]) / (ha[j, 0] / ha[j, 1])
        ok &= (ratio < 2) & (ratio > 0.5)
        for i in np.nonzero(ok)[0]:
            k = by[i] + (bx[i] - 1) * ny + (bs[i] - 1) * ny * nx  # 1-based, column-major
            histo[k - 1] += vote[j, i]
            table[j, i] = k
    G = np.where(table > 0, histo[np.maximum(table, 1) - 1], 0.0)
    return G + 0.01


def ref_features(model, img):
    """VGG-16 conv1_1 .. pool4 written out (3x3 convs pad 1 + ReLU, 2x2 max pools) on the released input."""
    x = (img * 255 - model.image_mean) / model.image_std
    convs = [m for m in model.backbone.features if isinstance(m, torch.nn.Conv2d)]
    blocks = (2, 2, 3, 3)
    k = 0
    for n in blocks:
        for _ in range(n):
            x = F.relu(F.conv2d(x, convs[k].weight, convs[k].bias, padding=1))
            k += 1
        x = F.max_pool2d(x, 2, 2)
    return x[0].detach().numpy()


def random_boxes(n, H, W, gen):
    x0 = torch.randint(0, W - 8, (n,), generator=gen)
    y0 = torch.randint(0, H - 8, (n,), generator=gen)
    w = torch.randint(6, W, (n,), generator=gen)
    h = torch.randint(6, H, (n,), generator=gen)
    return torch.stack([x0, y0, (x0 + w).clamp(max=W - 1), (y0 + h).clamp(max=H - 1)], 1).double()


@pytest.mark.parametrize("variant", ["A", "AG", "AG+"])
def test_scoring_equals_released_reference(variant):
    torch.manual_seed(0)
    model = sc.SCNet(variant=variant, weights=None, fc_dim=16, proposals="sliding").double()
    with torch.no_grad():  # non-trivial FCs so that similarities cross the 0.4 vote threshold
        model.fc_a.weight.normal_(0, 0.05)
        model.fc_a.bias.normal_(0, 0.5)
        if model.fc_g is not None:
            model.fc_g.weight.normal_(0, 0.05)
            model.fc_g.bias.normal_(0, 0.5)
    gen = torch.Generator().manual_seed(1)
    src, tgt = torch.rand(1, 3, 64, 80, dtype=torch.float64), torch.rand(1, 3, 72, 64, dtype=torch.float64)
    sb, tb = random_boxes(23, 64, 80, gen), random_boxes(19, 72, 64, gen)
    z = model.scores(src, tgt, sb, tb).detach().numpy()

    def fc_mat(fc):  # the FC as the released .mat holds it: (7, 7, 512, D)
        return fc.weight.detach().numpy().reshape(-1, 512, 7, 7).transpose(2, 3, 1, 0), fc.bias.detach().numpy()

    ps, pt = ref_roipool(ref_features(model, src), sb.numpy()), ref_roipool(ref_features(model, tgt), tb.numpy())
    fa, ba = fc_mat(model.fc_a)
    A = ref_fc_l2(ps, fa, ba) @ ref_fc_l2(pt, fa, ba).T
    if variant == "A":
        ref = np.maximum(A, 0)
    elif variant == "AG":
        ref = A * ref_geovote(A, sb.numpy(), tb.numpy(), (64, 80), (72, 64))
    else:
        fg, bg = fc_mat(model.fc_g)
        Ag = np.maximum(ref_fc_l2(ps, fg, bg) @ ref_fc_l2(pt, fg, bg).T, 0)
        ref = np.maximum(A, 0) * ref_geovote(Ag, sb.numpy(), tb.numpy(), (64, 80), (72, 64))
    if variant != "A":
        votes = ref / np.where(ref == 0, 1, (np.maximum(A, 0) if variant == "AG+" else A))
        assert (votes > 0.02).any(), "the test must exercise the vote, not only the 0.01 bias"
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-7)


def test_hough_bins_by_hand():
    # 100x100 images: Hough space 200x200, cell max(sqrt(40000/8000), 5) = 5 -> round(200/5*0.2) = 8 bins of
    # 24.875 px from 1; scale 40 bins of 0.2 over [-4, 4]. Flat id = (s * 8 + x) * 8 + y (0-based).
    src = torch.tensor([[0.0, 0.0, 9.0, 9.0], [40.0, 40.0, 59.0, 59.0]])
    tgt = torch.tensor([[0.0, 0.0, 9.0, 9.0], [10.0, 0.0, 19.0, 9.0], [0.0, 0.0, 13.0, 13.0],
                        [40.0, 45.0, 59.0, 54.0], [40.0, 44.0, 59.0, 55.0]])
    bins, nbins = geometry.hough_bins(src, tgt, (100, 100), (100, 100))
    assert nbins == (40, 8, 8)
    # source 0: 1-based (1,1,10,10), centre 5.5, half 4.5: the image corner (100, 100) is at 21 half-sizes.
    #  same box: vote (100, 100) -> x, y bins 3 (75.625 <= 100 < 100.5), scale log2(1) = 0 -> bin 20
    #  box moved by 10 px: x vote 110 -> bin 4
    #  box 1-based (1,1,14,14): half 6.5, vote 6.5 * 21 + 7.5 = 144 -> bin 5; log2(6.5^2/4.5^2) = 1.061 -> 25
    assert bins[0, :3].tolist() == [(20 * 8 + 3) * 8 + 3, (20 * 8 + 4) * 8 + 3, (25 * 8 + 5) * 8 + 5]
    # source 1: 1-based (41,41,60,60), half 9.5, corner at 5.2105 half-sizes.
    #  target half (9.5, 4.5): aspect 2.11 >= 2 -> no vote; target half (9.5, 5.5): aspect 1.73, votes
    #  x 100 -> 3, y 5.5 * 5.2105 + 50.5 = 79.16 -> 3, log2(9.5 * 5.5 / 90.25) = -0.789 -> 16
    assert bins[1, 3].item() == -1
    assert bins[1, 4].item() == (16 * 8 + 3) * 8 + 3
    # source 0 vs the far box (1-based (41,..)): x vote 9.5 * 21 + 50.5 > 200 -> outside
    assert bins[0, 3].item() == -1


def ref_vote_backward(table1, vote, dzdy):
    """vl_nnhoughvote with dzdy, transcribed (1-based table, 0 = no bin)."""
    y = np.zeros_like(dzdy)
    offsets = np.unique(table1[dzdy != 0])
    if len(offsets) > 1:
        for o in offsets[1:]:
            selected = (table1 == o) & (vote > 0)
            if selected.any():
                y[selected] = (dzdy * selected).sum()
    return y


@pytest.mark.parametrize("with_invalid", [True, False])
def test_vote_backward_is_the_released_one(with_invalid):
    gen = torch.Generator().manual_seed(3)
    sim = torch.rand(12, 15, generator=gen, dtype=torch.float64)
    bins = torch.randint(0, 6, (12, 15), generator=gen)
    if with_invalid:
        bins[torch.rand(12, 15, generator=gen) < 0.3] = -1
    dzdy = torch.randn(12, 15, generator=gen, dtype=torch.float64) * (torch.rand(12, 15, generator=gen) < 0.5)
    s = sim.clone().requires_grad_(True)
    G = geometry.hough_vote_scores(s, bins, (6,))
    G.backward(dzdy)
    ref = ref_vote_backward((bins + 1).numpy(), np.maximum(sim.numpy() - 0.4, 0), dzdy.numpy())
    np.testing.assert_allclose(s.grad.numpy(), ref, atol=1e-12)
    # the exact option is the true derivative
    s2 = sim.clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda x: geometry.hough_vote_scores(x, bins, (6,), grad="exact"), (s2,))


def test_model_defaults_and_untrained_parts():
    with pytest.warns(UserWarning, match="UNTRAINED: scnet has random weights in backbone, appearance FC, geometry"):
        model = build_model("scnet", fc_dim=8)
    assert model.variant == "AG+" and model.backbone_name == "vgg16" and model.proposals == "rp"
    assert isinstance(model.backbone, sc.VGG16Pool4) and model.fc_a.in_features == 512 * 49
    # AG+ training: only the geometry FC learns (backbone and appearance FC frozen), started from cnv_fc_1
    torch.testing.assert_close(model.fc_g.weight, model.fc_a.weight)
    opt = sc.published_optimizer(model)
    assert [p for g in opt.param_groups for p in g["params"]] == list(model.fc_g.parameters())
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 0.01 and opt.defaults["lr"] == 1e-4
    opt.state[model.fc_g.bias]["momentum_buffer"] = torch.ones(8)
    sc.reset_momentum(opt)  # MatConvNet zeroes the momentum at every epoch start
    assert len(opt.state) == 0
    assert not any(p.requires_grad for p in list(model.fc_a.parameters()) + list(model.backbone.parameters()))
    a = sc.SCNet(variant="A", weights=None, fc_dim=8)
    assert sc.trainable_parameters(a) == list(a.fc_a.parameters())
    with pytest.raises(ValueError, match="variant"):
        sc.SCNet(variant="B")
    with pytest.raises(ValueError, match="proposals"):
        sc.SCNet(proposals="selective", fc_dim=8)


def test_agplus_training_step_moves_only_the_geometry_fc():
    torch.manual_seed(0)
    model = sc.SCNet(variant="AG+", weights=None, fc_dim=8)
    with torch.no_grad():
        model.fc_g.bias.normal_(0, 1.0)
    model.train()
    opt = torch.optim.SGD(sc.trainable_parameters(model), lr=0.5)
    src, tgt = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    boxes = sc.sliding_window_boxes(48, 48)
    iou = sc.region_iou(boxes, boxes, lambda p: p, (48, 48))
    before_a, before_g = model.fc_a.weight.clone(), model.fc_g.bias.clone()
    loss = model.loss(src, tgt, boxes, boxes, iou)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.equal(model.fc_a.weight, before_a) and not torch.equal(model.fc_g.bias, before_g)


def test_match_with_given_boxes_and_proposals():
    torch.manual_seed(0)
    model = sc.SCNet(variant="AG", weights=None, fc_dim=8)
    src, tgt = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 44, 40)
    sb, tb = sc.sliding_window_boxes(40, 48), sc.sliding_window_boxes(44, 40)
    m = model.match(src, tgt, src_boxes=[sb], tgt_boxes=[tb])
    assert m.field.shape == (1, 40, 48, 2) and torch.isfinite(m.field).all()  # one flow vector per pixel
    assert m.confidence.shape == (1, 40, 48)
    out = m.transfer_keypoints(torch.tensor([[5.0, 6.0], [30.0, 20.0]]))
    assert out.shape == (2, 2)
    # the default proposals (RP pipeline) run too, and give boxes inside the image
    boxes = model.region_boxes(src)
    assert len(boxes) > 0 and (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 47).all() and (boxes[:, 3] <= 39).all()


@pytest.mark.parametrize("backbone,proposals", [("daisy", "felzenszwalb"), ("resnet50", "sliding")])
def test_substitutes_run_as_named_options(backbone, proposals):
    model = sc.SCNet(variant="AG+", backbone=backbone, proposals=proposals, weights=None, fc_dim=8, sd_filter=False)
    assert model.backbone_name == backbone and model.proposals == proposals
    assert ("backbone" in model.untrained_parts()) == (backbone != "daisy")
    src, tgt = torch.rand(2, 3, 48, 56), torch.rand(2, 3, 48, 56)
    m = model.match(src, tgt)
    assert m.field.shape == (2, 48, 56, 2) and torch.isfinite(m.field).all()
