"""DINOv2 backbones (semcorr.backbones_vit): a state dict in the layout of the official release loads, and the
features equal a float64 forward written here from facebookresearch/dinov2's code (prepare_tokens_with_masks,
interpolate_pos_encoding, NestedTensorBlock, MemEffAttention, LayerScale, Mlp), read with the search tools."""
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("timm", reason="timm is a declared dependency (requirements.txt); install it")

from semcorr.backbones import build_backbone  # noqa: E402
from semcorr.backbones_vit import DINOv2Features, dinov2_hub_checkpoint_path  # noqa: E402
from semcorr.checkpoints import CheckpointError  # noqa: E402

DIM, HEADS, DEPTH, M = 384, 6, 2, 37  # ViT-S/14, cut to 2 blocks to stay fast


def official_state_dict(depth=DEPTH, registers=0, seed=0, dim=DIM, swiglu_hidden=None):
    """The keys, shapes and dtypes ``torch.save(dinov2_vits14().state_dict())`` writes (hub file
    dinov2_vits14_pretrain.pth), random values with the scale of trained ones. ``swiglu_hidden``: ViT-G's
    ``SwiGLUFFNFused`` MLP (``mlp.w12`` (2 hidden, dim), ``mlp.w3`` (dim, hidden)) instead of fc1/fc2."""
    DIM = dim  # noqa: N806 - the module constant's name, for ViT-G too
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.02):
        return torch.randn(*shape, generator=g) * s

    sd = OrderedDict()
    sd["cls_token"] = r(1, 1, DIM, s=0.5)
    sd["pos_embed"] = r(1, 1 + M * M, DIM, s=0.5)
    if registers:
        sd["register_tokens"] = r(1, registers, DIM, s=0.5)
    sd["mask_token"] = torch.zeros(1, DIM)
    sd["patch_embed.proj.weight"] = r(DIM, 3, 14, 14, s=0.05)
    sd["patch_embed.proj.bias"] = r(DIM)
    for i in range(depth):
        p = "blocks.%d." % i
        sd[p + "norm1.weight"] = 1 + r(DIM, s=0.1)
        sd[p + "norm1.bias"] = r(DIM)
        sd[p + "attn.qkv.weight"] = r(3 * DIM, DIM, s=0.1)
        sd[p + "attn.qkv.bias"] = r(3 * DIM)
        sd[p + "attn.proj.weight"] = r(DIM, DIM, s=0.05)
        sd[p + "attn.proj.bias"] = r(DIM)
        sd[p + "ls1.gamma"] = r(DIM, s=0.3)
        sd[p + "norm2.weight"] = 1 + r(DIM, s=0.1)
        sd[p + "norm2.bias"] = r(DIM)
        if swiglu_hidden:
            sd[p + "mlp.w12.weight"] = r(2 * swiglu_hidden, DIM, s=0.05)
            sd[p + "mlp.w12.bias"] = r(2 * swiglu_hidden)
            sd[p + "mlp.w3.weight"] = r(DIM, swiglu_hidden, s=0.05)
            sd[p + "mlp.w3.bias"] = r(DIM)
        else:
            sd[p + "mlp.fc1.weight"] = r(4 * DIM, DIM, s=0.05)
            sd[p + "mlp.fc1.bias"] = r(4 * DIM)
            sd[p + "mlp.fc2.weight"] = r(DIM, 4 * DIM, s=0.05)
            sd[p + "mlp.fc2.bias"] = r(DIM)
        sd[p + "ls2.gamma"] = r(DIM, s=0.3)
    sd["norm.weight"] = 1 + r(DIM, s=0.1)
    sd["norm.bias"] = r(DIM)
    return sd


def reference_dinov2(sd, img, registers=0, heads=HEADS, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """float64 DINOv2 forward from the official code; returns per block (tokens before the final norm, keys)."""
    sd = {k: v.double() for k, v in sd.items()}
    DIM, HEADS = sd["cls_token"].shape[-1], heads  # noqa: N806
    # transforms.Normalize on the float32 image tensor of the published pipelines: float32 mean/std constants
    x = (img.double() - torch.tensor(mean).double().view(1, 3, 1, 1)) / torch.tensor(std).double().view(1, 3, 1, 1)
    B, _, w, h = x.shape  # the official code calls the height "w"
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=14)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(B, -1, -1), x], 1)
    # interpolate_pos_encoding (interpolate_offset=0.1, interpolate_antialias=False)
    npatch, N = x.shape[1] - 1, sd["pos_embed"].shape[1] - 1
    if npatch == N and w == h:
        pos = sd["pos_embed"]
    else:
        w0, h0 = w // 14, h // 14
        Mq = int(math.sqrt(N))
        # the official code interpolates in float32 (``self.pos_embed.float()``) whatever the model's dtype
        pp = F.interpolate(sd["pos_embed"][:, 1:].float().reshape(1, Mq, Mq, DIM).permute(0, 3, 1, 2),
                           mode="bicubic", antialias=False, scale_factor=((w0 + 0.1) / Mq, (h0 + 0.1) / Mq)).double()
        assert tuple(pp.shape[-2:]) == (w0, h0)
        pos = torch.cat([sd["pos_embed"][:, :1], pp.permute(0, 2, 3, 1).reshape(1, -1, DIM)], 1)
    x = x + pos
    if registers:
        x = torch.cat([x[:, :1], sd["register_tokens"].expand(B, -1, -1), x[:, 1:]], 1)
    tokens, keys = [], []
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(n_blocks):
        p = "blocks.%d." % i
        y = F.layer_norm(x, (DIM,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        qkv = (y @ sd[p + "attn.qkv.weight"].T + sd[p + "attn.qkv.bias"]).reshape(B, -1, 3, HEADS, DIM // HEADS)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        keys.append(k)
        a = ((q * (DIM // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        y = (a @ v).transpose(1, 2).reshape(B, -1, DIM) @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"]
        x = x + y * sd[p + "ls1.gamma"]
        y = F.layer_norm(x, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        if p + "mlp.w12.weight" in sd:  # SwiGLUFFNFused: x1, x2 = w12(x).chunk(2); w3(silu(x1) * x2)
            x1, x2 = (y @ sd[p + "mlp.w12.weight"].T + sd[p + "mlp.w12.bias"]).chunk(2, dim=-1)
            y = (F.silu(x1) * x2) @ sd[p + "mlp.w3.weight"].T + sd[p + "mlp.w3.bias"]
        else:  # Mlp: fc2(gelu(fc1(x)))
            y = F.gelu(y @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"]) @ sd[p + "mlp.fc2.weight"].T \
                + sd[p + "mlp.fc2.bias"]
        x = x + y * sd[p + "ls2.gamma"]
        tokens.append(x)
    return tokens, keys


def as_map(tokens, skip, hw):
    return tokens[:, skip:].transpose(1, 2).reshape(tokens.shape[0], -1, *hw)


@pytest.fixture
def official_file(tmp_path):
    def write(registers=0, sd=None):
        sd = official_state_dict(registers=registers) if sd is None else sd
        path = tmp_path / ("dinov2_vits14%s_pretrain.pth" % ("_reg4" if registers else ""))
        torch.save(sd, path)
        return path, sd
    return write


@pytest.mark.parametrize("registers", [0, 4])
@pytest.mark.parametrize("size", [(70, 98), (56, 56)])
def test_official_layout_tokens_and_keys_match_reference(official_file, registers, size):
    path, sd = official_file(registers)
    name = "dinov2_vits14_reg" if registers else "dinov2_vits14"
    img = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    hw = (size[0] // 14, size[1] // 14)
    ref_tokens, ref_keys = reference_dinov2(sd, img, registers)
    skip = 1 + registers
    for facet in ("token", "key"):
        m = DINOv2Features(name, layers=(0, -1), facet=facet, weights=path, depth=DEPTH).double().eval()
        with torch.no_grad():
            got = m(img.double())
        assert [tuple(f.shape) for f in got] == [(2, DIM, *hw)] * 2
        for blk, g in zip((0, 1), got):
            if facet == "token":
                want = as_map(ref_tokens[blk], skip, hw)
            else:  # (B, heads, N, hd) -> head-major channels
                k = ref_keys[blk][:, :, skip:]
                want = k.permute(0, 1, 3, 2).reshape(2, DIM, *hw)
            # register variants: timm folds the class token's position row into the class token once, in the
            # file's float32 (the official model adds them in float32 at every call): one float32 rounding
            tol = 1e-6 if registers else 1e-9
            torch.testing.assert_close(g, want, rtol=tol, atol=tol)


def test_giant_swiglu_layout_loads_and_matches_reference(tmp_path):
    # ViT-G/14 (1536 wide, 24 heads, SwiGLU 4096) cut to one block: timm converts w12/w3 to its packed SwiGLU
    sd = official_state_dict(depth=1, dim=1536, swiglu_hidden=4096)
    path = tmp_path / "dinov2_vitg14_pretrain.pth"
    torch.save(sd, path)
    m = DINOv2Features("dinov2_vitg14", weights=path, depth=1).double().eval()
    img = torch.rand(1, 3, 42, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = m(img.double())[0]
    tokens, _ = reference_dinov2(sd, img, heads=24)
    torch.testing.assert_close(got, as_map(tokens[0], 1, (3, 2)), rtol=1e-9, atol=1e-9)


def test_native_grid_keeps_the_table_and_others_interpolate(official_file):
    path, sd = official_file()
    m = DINOv2Features("dinov2_vits14", weights=path, depth=DEPTH).double()
    torch.testing.assert_close(m.interpolate_pos_embed(M, M), sd["pos_embed"][:, 1:].double())
    # a 60 x 60 grid (GeoAware-SC's 840 px input) differs from timm's antialiased exact-size resampling
    from timm.layers import resample_abs_pos_embed
    ours = m.interpolate_pos_embed(60, 60)
    timm_way = resample_abs_pos_embed(sd["pos_embed"][:, 1:].double(), new_size=(60, 60), num_prefix_tokens=0)
    assert ours.shape == timm_way.shape == (1, 3600, DIM)
    assert (ours - timm_way).abs().max() > 1e-3


def test_random_weights_any_size_and_layers(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.warns(UserWarning, match="random weights"):  # the default "auto" with an empty hub cache
        m = DINOv2Features("dinov2_vits14", layers=(-2, -1), depth=3).eval()
    assert not m.pretrained and m.layers == (1, 2) and m.strides == [14, 14] and m.channels == DIM
    with torch.no_grad():
        out = m(torch.rand(1, 3, 45, 31))
    assert [tuple(f.shape) for f in out] == [(1, DIM, 3, 2)] * 2
    assert all(torch.isfinite(f).all() for f in out)


def test_build_backbone_names():
    m = build_backbone("dinov2_vits14_reg", depth=1, weights=None)
    assert isinstance(m, DINOv2Features) and m.vit.reg_token.shape == (1, 4, DIM)


def test_bad_files_and_arguments_fail_clearly(official_file, tmp_path, monkeypatch):
    sd = official_state_dict()
    del sd["blocks.1.ls2.gamma"]
    path, _ = official_file(sd=sd)
    with pytest.raises(CheckpointError, match=r"missing keys: blocks\.1\.ls2\.gamma"):
        DINOv2Features("dinov2_vits14", weights=path, depth=DEPTH)
    path, _ = official_file(sd=official_state_dict(depth=3))
    with pytest.raises(CheckpointError, match=r"unexpected keys: blocks\.2\."):
        DINOv2Features("dinov2_vits14", weights=path, depth=DEPTH)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="dinov2_vits14_pretrain.pth"):
        DINOv2Features("dinov2_vits14", weights="hub", depth=DEPTH)
    assert dinov2_hub_checkpoint_path("dinov2_vitb14").endswith("checkpoints/dinov2_vitb14_pretrain.pth")
    with pytest.raises(ValueError, match="name"):
        DINOv2Features("dinov2_vitx14")
    with pytest.raises(ValueError, match="facet"):
        DINOv2Features("dinov2_vits14", facet="query", depth=1)
    with pytest.raises(ValueError, match="layers"):
        DINOv2Features("dinov2_vits14", layers=(5,), depth=1)


def test_hub_cache_file_loads(official_file, tmp_path, monkeypatch):
    path, sd = official_file()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    dst = tmp_path / "hub" / "checkpoints"
    dst.mkdir(parents=True)
    torch.save(sd, dst / "dinov2_vits14_pretrain.pth")
    m = DINOv2Features("dinov2_vits14", weights="hub", depth=DEPTH)
    assert m.pretrained
    torch.testing.assert_close(m.vit.blocks[1].ls2.gamma.detach(), sd["blocks.1.ls2.gamma"])
