"""``semcorr match [SRC TGT]``: match two images and draw the result.

Without images it matches a built-in pair (a scikit-image photo and a random warp of it,
:func:`semcorr.data.sample.sample_pair`) and also reports PCK against the known warp.
"""
import sys
import time

import numpy as np
import torch

__all__ = ["add_parser", "run", "load_image", "pck_img"]


def add_parser(subparsers):
    p = subparsers.add_parser(
        "match", help="match two images (or a built-in sample pair) and draw the matches",
        description="Match SRC to TGT with a correspondence model, print a summary and write a picture. "
                    "Without SRC/TGT, use a built-in photo and a random warp of it and report PCK against "
                    "the exact ground truth. Works offline on the CPU with the default method.")
    p.add_argument("src", nargs="?", help="source image (any format scikit-image reads)")
    p.add_argument("tgt", nargs="?", help="target image")
    p.add_argument("--method", default="nn", help="model name (see semcorr.models; default: nn)")
    p.add_argument("--backbone", default=None,
                   help="backbone for the model, e.g. daisy, hog, resnet101 (default: the model's own)")
    p.add_argument("--checkpoint", "--weights", default=None, metavar="PATH",
                   help="trained weights for the model, in the layout its published code saves (e.g. NC-Net's "
                        ".pth.tar, SFNet's best_checkpoint.pt) or the one `semcorr train` writes")
    p.add_argument("--out", default="matches.png", help="picture to write (default: matches.png)")
    p.add_argument("--size", type=int, default=240,
                   help="resize so that the longer side is SIZE pixels (default: 240)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="warp seed of the built-in pair (default: 0)")
    p.add_argument("--num-draw", type=int, default=60,
                   help="with images given: draw this many of the most confident mutual matches (default: 60)")
    p.set_defaults(func=run)
    return p


def load_image(path: str, size: int) -> np.ndarray:
    """Read an image as (H, W, 3) float32 in [0, 1], resized so that max(H, W) == size."""
    from skimage import io
    from skimage.color import gray2rgb, rgba2rgb
    from skimage.transform import resize
    from skimage.util import img_as_float

    img = io.imread(path)
    if img.ndim == 2:
        img = gray2rgb(img)
    elif img.shape[-1] == 4:
        img = rgba2rgb(img)
    img = img_as_float(img)[..., :3]
    h, w = img.shape[:2]
    s = size / max(h, w)
    out_hw = (max(1, int(round(h * s))), max(1, int(round(w * s))))
    if out_hw != (h, w):
        img = resize(img, out_hw, order=1, anti_aliasing=s < 1)
    return np.clip(img, 0, 1).astype(np.float32)


def _tensor(img: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device)


def pck_img(pred: torch.Tensor, gt: torch.Tensor, tgt_size, alpha: float) -> torch.Tensor:
    """PCK with alpha_img (L = max(H, W) of the target image): (B,) float64 fraction of valid keypoints correct.

    Uses :func:`semcorr.eval.pck.pck` when that module exists, else the same formula locally.
    """
    B = pred.shape[0]
    thresh = torch.full((B,), float(max(tgt_size)), dtype=pred.dtype, device=pred.device)
    try:
        from semcorr.eval.pck import pck
    except ModuleNotFoundError as e:
        if e.name not in ("semcorr.eval", "semcorr.eval.pck"):
            raise
        # same definition: float64, gt rows with a negative coordinate are padding, nan without valid rows
        valid = (gt >= 0).all(-1)
        ok = ((pred.double() - gt.double()).norm(dim=-1) <= alpha * thresh.double()[:, None]) & valid
        return ok.sum(1).double() / valid.sum(1).double()
    return pck(pred, gt, thresh, alpha)


def _stamp_untrained(fig, untrained) -> None:
    """Write the UNTRAINED line (when given) in red across the bottom of a figure, wrapped to its width, so that
    a picture made with random weights cannot be taken for the published method's."""
    import textwrap

    if untrained:
        size = 8
        width = max(30, int(fig.get_figwidth() * 72 / (0.6 * size)))
        fig.text(0.5, 0.01, textwrap.fill(untrained, width), ha="center", va="bottom", color="red", fontsize=size,
                 bbox=dict(facecolor="white", alpha=0.8, edgecolor="red"))


def _draw(src_np, tgt_np, src_pts, tgt_pts, out, untrained, **kwargs) -> None:
    """:func:`semcorr.viz.draw_matches` to ``out``, stamped with the UNTRAINED line when there is one."""
    from semcorr.viz import draw_matches

    fig = draw_matches(src_np, tgt_np, src_pts, tgt_pts, out=None, **kwargs)
    _stamp_untrained(fig, untrained)
    fig.savefig(out)


def run(args) -> int:
    from semcorr.models import build_model, untrained_line

    if (args.src is None) != (args.tgt is None):
        raise SystemExit("semcorr match: give both SRC and TGT, or neither (to use the built-in sample pair)")
    device = torch.device(args.device)
    kwargs = {} if args.backbone is None else {"backbone": args.backbone}
    if args.checkpoint is not None:
        kwargs["checkpoint"] = args.checkpoint
    try:
        model = build_model(args.method, **kwargs).to(device)
    except (FileNotFoundError, KeyError, ValueError) as e:  # missing weights / checkpoint, unknown model, bad keys
        print("semcorr match: error: %s" % (e.args[0] if e.args else e), file=sys.stderr)
        return 1
    except TypeError as e:
        if args.checkpoint is None or "checkpoint" not in str(e):
            raise
        print("semcorr match: error: --method %s takes no --checkpoint (it has no trained weights of its own)"
              % args.method, file=sys.stderr)
        return 1
    untrained = untrained_line(model)

    pair = None
    if args.src is None:
        from semcorr.data.sample import sample_pair

        pair = sample_pair(seed=args.seed, size=args.size)
        src_np, tgt_np = pair.src_img, pair.tgt_img
        src_name = "built-in sample (astronaut)"
        tgt_name = "its random affine+TPS warp, seed %d" % args.seed
    else:
        src_np, tgt_np = load_image(args.src, args.size), load_image(args.tgt, args.size)
        src_name, tgt_name = args.src, args.tgt
    src, tgt = _tensor(src_np, device), _tensor(tgt_np, device)

    t0 = time.perf_counter()
    m = model.match(src, tgt)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0

    Hs, Ws = m.grid_size
    n = Hs * Ws
    mutual = m.extras.get("mutual")
    backbone = getattr(model, "backbone_name", None)
    print("method:     %s%s" % (args.method, " (backbone %s)" % backbone if backbone else ""))
    if untrained:
        print(untrained)  # every figure below comes from random weights: say so beside them
    print("source:     %s, %dx%d (HxW)" % (src_name, src_np.shape[0], src_np.shape[1]))
    print("target:     %s, %dx%d (HxW)" % (tgt_name, tgt_np.shape[0], tgt_np.shape[1]))
    tgt_grid = m.extras.get("tgt_grid")
    print("grid:       %dx%d source cells%s" % (Hs, Ws, " -> %dx%d target cells" % tuple(tgt_grid) if tgt_grid else ""))
    print("time:       %.3f s (%s)" % (elapsed, device))
    print("matches:    %d%s" % (n, ", %d mutual nearest neighbours" % int(mutual.sum()) if mutual is not None else ""))
    print("confidence: mean %.4f" % float(m.confidence.mean()))

    if pair is not None:
        src_kps, gt_kps = pair.kps_tensors(device)
        pred = m.transfer_keypoints(src_kps)
        nvalid = int((gt_kps >= 0).all(-1).sum())
        L = max(tgt_np.shape[:2])
        for alpha in (0.05, 0.1):
            v = float(pck_img(pred, gt_kps, tgt_np.shape[:2], alpha)[0])
            print("PCK@%.2f:   %.4f  (alpha_img, L = %d px, %d keypoints)" % (alpha, v, L, nvalid))
        err = (pred - gt_kps).norm(dim=-1)[0].cpu()
        correct = (err <= 0.1 * L).numpy()
        _draw(src_np, tgt_np, src_kps[0].cpu(), pred[0].cpu(), args.out, untrained, correct=correct,
              gt_kps=gt_kps[0].cpu(), title="%s: green = within 0.1*max(H,W) of the true position (white x)"
              % args.method)
    else:
        conf = m.confidence[0].flatten()
        order = torch.argsort(conf, descending=True)
        if mutual is not None:
            order = order[mutual[0].flatten()[order]]
        keep = order[: max(0, args.num_draw)].cpu()
        src_pts = m.source_pixels().reshape(-1, 2).cpu()[keep]
        tgt_pts = m.target_pixels()[0].reshape(-1, 2).cpu()[keep]
        _draw(src_np, tgt_np, src_pts, tgt_pts, args.out, untrained,
              title="%s: %d most confident %smatches" % (args.method, len(keep), "mutual " if mutual is not None else ""))
    print("wrote:      %s" % args.out)
    masks = m.extras.get("masks")
    if masks is not None:  # any model predicting foreground masks: {"src": (B,1,H,W), "tgt": ...} or a list
        import os

        from matplotlib.figure import Figure

        items = list(masks.items()) if isinstance(masks, dict) else [(str(i), v) for i, v in enumerate(masks)]
        images = {"src": src_np, "tgt": tgt_np}
        fig = Figure(figsize=(6.5, 3.0 * len(items)))
        for r, (name, mk) in enumerate(items):
            mk = mk.detach().float().cpu().numpy().reshape(mk.shape[-2:]) if mk.dim() >= 2 else mk
            ax_m = fig.add_subplot(len(items), 2, 2 * r + 2)
            ax_m.imshow(mk, cmap="gray", vmin=0, vmax=1)
            ax_m.set_title("%s mask (mean %.2f)" % (name, float(mk.mean())), fontsize=9)
            ax_m.axis("off")
            ax_i = fig.add_subplot(len(items), 2, 2 * r + 1)
            if name in images and images[name].shape[:2] == mk.shape:
                ax_i.imshow(images[name] * (0.3 + 0.7 * mk[..., None]))
            ax_i.set_title("%s image x mask" % name, fontsize=9)
            ax_i.axis("off")
        fig.tight_layout()
        _stamp_untrained(fig, untrained)
        mask_out = os.path.splitext(args.out)[0] + "_masks.png"
        fig.savefig(mask_out, dpi=100)
        print("masks:      %s" % mask_out)
    return 0
