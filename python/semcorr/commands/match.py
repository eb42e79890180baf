"""``semcorr match``: match two images, or every pair of a list, draw and save the matches.

    semcorr match                                        # built-in pair (photo + known warp): PCK printed
    semcorr match SRC.jpg TGT.jpg --out m.png --save m.npz
    semcorr match SRC.jpg TGT.jpg --method sfnet --checkpoint runs/sfnet/last.pt
    semcorr match --method ncnet --checkpoint ncnet_pfpascal.pth.tar --model-arg relocalization_k=2 A.jpg B.jpg
    semcorr match --pairs pairs.csv --out results/ --save-format json

Without images it matches a built-in pair (a scikit-image photo and a random warp of it,
:func:`semcorr.data.sample.sample_pair`) and also reports PCK against the known warp.

Every input (method, model arguments, checkpoint file, image files and that they decode, output folders and
file types, device, size) is checked before the model is built; a mistake is one line on stderr and exit code 2
(``--debug`` shows the traceback).

Saved matches (``--save``, :func:`save_matches`, read back with :func:`load_matches`): one match per cell of the
model's source grid, coordinates in pixels of the ORIGINAL image files (x right, y down, pixel centres at whole
numbers), whatever ``--size`` the model worked at:

* ``src_points`` (N, 2) float32, ``tgt_points`` (N, 2) float32: (x, y) of each match in the source / target;
* ``confidence`` (N,) float32 (model specific, larger = more confident);
* ``mutual`` (N,) bool: mutual nearest neighbours (all true when the model gives no such flag, see
  ``has_mutual``);
* ``src_size``, ``tgt_size``: (H, W) of the image files; ``grid``: (Hs, Ws) of the source grid (N = Hs * Ws,
  row-major); ``method``, ``src``, ``tgt``: the model name and the image paths; ``format``: ``semcorr-matches-1``.

``.npz`` holds these as arrays (strings as 0-d arrays), ``.json`` as lists. ``.flo`` (Middlebury) holds the dense
flow instead: (H, W, 2) float32 (u, v) = target - source position of every source pixel (bilinear between cell
centres), at the source file's size.

``--pairs LIST.csv``: a CSV file with a header row and columns ``src``, ``tgt`` and optionally ``name`` (paths
relative to the CSV's folder). The model is built once; ``--out`` is then a folder that receives
``NAME.png`` (unless ``--no-draw``), ``NAME.<--save-format>`` per pair and ``summary.csv``.
"""
import csv
import json
import os
import sys
import time

__all__ = ["add_parser", "run", "load_image", "pck_img", "save_matches", "load_matches", "read_pairs",
           "SAVE_FORMATS", "MATCHES_FORMAT"]

SAVE_FORMATS = (".npz", ".json", ".flo")
MATCHES_FORMAT = "semcorr-matches-1"


def add_parser(subparsers):
    from semcorr.cli import SUMMARIES, HelpFormatter
    from semcorr.commands._checks import MIN_SIZE, size_arg
    from semcorr.commands.eval import _kv
    from semcorr.models import ALIASES, available_models

    aliases = ", ".join("%s = %s" % kv for kv in sorted(ALIASES.items()))
    p = subparsers.add_parser("match", help=SUMMARIES["match"], description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("src", nargs="?", help="source image (any format Pillow / scikit-image reads)")
    p.add_argument("tgt", nargs="?", help="target image")
    p.add_argument("--pairs", default=None, metavar="LIST.csv",
                   help="match every pair of a CSV file (columns src, tgt[, name]) with one model load")
    p.add_argument("--method", "-m", default=None, metavar="NAME",
                   help="model: %s%s; default: nn, or the model a `semcorr train` --checkpoint was trained as"
                        % (", ".join(available_models()), " (aliases: %s)" % aliases if aliases else ""))
    p.add_argument("--backbone", default=None,
                   help="backbone for the model, e.g. daisy, hog, resnet101 (default: the model's own)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="trained weights for the model: the file its published code saves (e.g. NC-Net's "
                        ".pth.tar, SFNet's best_checkpoint.pt) or one `semcorr train` wrote (rebuilt exactly)")
    p.add_argument("--weights", default=None, metavar="auto|imagenet|none|PATH",
                   help="pretrained backbone weights (the model's `weights` argument, as in `semcorr train` and "
                        "`hpf-search`): auto (ImageNet if in the torch hub cache), imagenet, none (random) or a "
                        "file, e.g. DINOv2's dinov2_vitb14_pretrain.pth (default: the model's own)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for the model (repeatable, as in `semcorr eval`), e.g. "
                        "--model-arg relocalization_k=2")
    p.add_argument("--out", default=None,
                   help="picture to write (.png, .jpg, .pdf, .svg...; default matches.png); with --pairs: a folder "
                        "(default matches/)")
    p.add_argument("--save", default=None, metavar="FILE",
                   help="also save the matches: FILE.npz, FILE.json (points, confidence, mutual flag, sizes) or "
                        "FILE.flo (dense flow); see the format above")
    p.add_argument("--save-format", default="npz", choices=[f[1:] for f in SAVE_FORMATS],
                   help="with --pairs: file type of each pair's matches")
    p.add_argument("--no-draw", action="store_true", help="write no picture")
    p.add_argument("--size", type=size_arg, default=240,
                   help="resize each image so that its longer side is SIZE pixels (at least %d; 0 = original "
                        "size; default: 240)" % MIN_SIZE)
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="warp seed of the built-in pair (default: 0)")
    p.add_argument("--num-draw", type=int, default=60,
                   help="with images given: draw this many of the most confident mutual matches (default: 60)")
    p.add_argument("--no-progress", action="store_true", help="with --pairs: no progress bar")
    p.set_defaults(func=run)
    return p


# ---------------------------------------------------------------------------------------------------------
# images


def load_image(path: str, size: int):
    """Read an image as (H, W, 3) float32 in [0, 1], resized so that max(H, W) == size (``size`` 0: as it is)."""
    import numpy as np
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
    out_hw = _resized_hw((h, w), size)
    if out_hw != (h, w):
        img = resize(img, out_hw, order=1, anti_aliasing=out_hw[0] < h)
    return np.clip(img, 0, 1).astype(np.float32)


def _resized_hw(hw, size: int):
    h, w = hw
    if not size:
        return h, w
    s = size / max(h, w)
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def _tensor(img, device):
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device)


def pck_img(pred, gt, tgt_size, alpha: float):
    """PCK with alpha_img (L = max(H, W) of the target image): (B,) float64 fraction of valid keypoints correct
    (:func:`semcorr.eval.pck.pck`)."""
    import torch

    from semcorr.eval.pck import pck

    thresh = torch.full((pred.shape[0],), float(max(tgt_size)), dtype=pred.dtype, device=pred.device)
    return pck(pred, gt, thresh, alpha)


# ---------------------------------------------------------------------------------------------------------
# saved matches


def _to_file_pixels(pts, size, file_size):
    """Pixel coordinates in an image of ``size`` (H, W) -> in the file's ``file_size`` (pixel centres align)."""
    import numpy as np

    scale = np.array([file_size[1] / size[1], file_size[0] / size[0]], dtype=np.float64)
    return ((pts.astype(np.float64) + 0.5) * scale - 0.5).astype(np.float32)


def matches_record(m, src_file_size, tgt_file_size, method: str, src: str, tgt: str) -> dict:
    """The saved form of a :class:`semcorr.models.Matches` of batch size 1 (see the module docstring)."""
    import numpy as np

    Hs, Ws = m.grid_size
    mutual = m.extras.get("mutual")
    return {
        "format": MATCHES_FORMAT, "method": method, "src": src, "tgt": tgt,
        "src_size": np.array(src_file_size, dtype=np.int64), "tgt_size": np.array(tgt_file_size, dtype=np.int64),
        "grid": np.array([Hs, Ws], dtype=np.int64),
        "src_points": _to_file_pixels(m.source_pixels().reshape(-1, 2).cpu().numpy(), m.src_size, src_file_size),
        "tgt_points": _to_file_pixels(m.target_pixels()[0].reshape(-1, 2).cpu().numpy(), m.tgt_size, tgt_file_size),
        "confidence": m.confidence[0].reshape(-1).float().cpu().numpy(),
        "mutual": (mutual[0].reshape(-1).cpu().numpy().astype(bool) if mutual is not None
                   else np.ones(Hs * Ws, dtype=bool)),
        "has_mutual": mutual is not None,
    }


def dense_flow(m, src_file_size, tgt_file_size):
    """(H, W, 2) float32 flow (u, v) in file pixels at every pixel of the source file (for ``.flo``)."""
    import numpy as np
    import torch

    H, W = src_file_size
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    src_px = np.stack([xx, yy], -1).reshape(-1, 2)
    # file pixels -> pixels of the image the model saw, through the model's field, -> target file pixels
    work = _to_file_pixels(src_px, src_file_size, m.src_size)
    tgt = m.transfer_keypoints(torch.from_numpy(work)[None].to(m.field.device).to(m.field.dtype))[0]
    tgt = _to_file_pixels(tgt.float().cpu().numpy(), m.tgt_size, tgt_file_size)
    return (tgt - src_px).reshape(H, W, 2)


def save_matches(path: str, record: dict, flow=None) -> None:
    """Write ``record`` (:func:`matches_record`) as ``.npz`` / ``.json``, or ``flow`` as ``.flo``."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower()
    if ext == ".flo":
        from semcorr.data.datasets.tss import write_flo

        write_flo(path, flow)
    elif ext == ".npz":
        np.savez(path, **{k: np.asarray(v) for k, v in record.items()})
    elif ext == ".json":
        with open(path, "w") as f:
            json.dump({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in record.items()}, f)
    else:
        raise ValueError("save_matches: unsupported file type %r; use one of %s" % (ext, ", ".join(SAVE_FORMATS)))


def load_matches(path: str) -> dict:
    """Read a ``.npz`` / ``.json`` file of :func:`save_matches` back: numpy arrays and Python strings/bools."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
        rec = {k: (v.item() if v.ndim == 0 else v) for k, v in raw.items()}
    elif ext == ".json":
        with open(path) as f:
            rec = json.load(f)
        dtypes = {"src_points": np.float32, "tgt_points": np.float32, "confidence": np.float32, "mutual": bool,
                  "src_size": np.int64, "tgt_size": np.int64, "grid": np.int64}
        rec = {k: (np.asarray(v, dtype=dtypes[k]) if k in dtypes else v) for k, v in rec.items()}
    else:
        raise ValueError("load_matches: %s is not a .npz or .json matches file" % path)
    if rec.get("format") != MATCHES_FORMAT:
        raise ValueError("load_matches: %s is not a semcorr matches file (format %r)" % (path, rec.get("format")))
    return rec


# ---------------------------------------------------------------------------------------------------------
# inputs


def read_pairs(path: str):
    """The pairs of a ``--pairs`` CSV file: a list of (name, src path, tgt path); paths relative to its folder."""
    from semcorr.cli import CommandError

    if not os.path.isfile(path):
        raise CommandError("--pairs %s: no such file" % path)
    base = os.path.dirname(os.path.abspath(path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = [] if not rows else list(rows[0])
    if not rows:
        raise CommandError("--pairs %s: no pairs (a header row `src,tgt[,name]` and one row per pair)" % path)
    if not {"src", "tgt"} <= set(fields):
        raise CommandError("--pairs %s: the header must name columns src and tgt (got %s)" % (path, ", ".join(fields)))
    pairs, names = [], set()
    for i, row in enumerate(rows):
        src, tgt = (row.get("src") or "").strip(), (row.get("tgt") or "").strip()
        if not src or not tgt:
            raise CommandError("--pairs %s: row %d has no src or tgt" % (path, i + 2))
        src, tgt = (os.path.join(base, p) if not os.path.isabs(p) else p for p in (src, tgt))
        name = (row.get("name") or "").strip() or "%04d_%s_%s" % (i, _stem(src), _stem(tgt))
        if name in names or os.sep in name:
            raise CommandError("--pairs %s: row %d: name %r is repeated or holds a path separator"
                               % (path, i + 2, name))
        names.add(name)
        pairs.append((name, src, tgt))
    return pairs


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _picture_types():
    from matplotlib.figure import Figure

    return ["." + e for e in Figure().canvas.get_supported_filetypes()]


def _trained_method(checkpoint):
    """The model a ``semcorr train`` checkpoint was trained as (None for other files)."""
    if checkpoint is None or not os.path.isfile(checkpoint):
        return None
    from semcorr.models.trained import read_training_checkpoint

    saved = read_training_checkpoint(checkpoint)
    return None if saved is None else saved["method"]


def _model_kwargs(args, method: str) -> dict:
    from semcorr.cli import CommandError
    from semcorr.commands._checks import check_model_args

    kwargs = dict(args.model_arg)
    for opt, key in (("--backbone", "backbone"), ("--checkpoint", "checkpoint"), ("--weights", "weights")):
        value = getattr(args, key)
        if value is not None:
            if key in kwargs:
                raise CommandError("%s and --model-arg %s=...: give one of them" % (opt, key))
            kwargs[key] = None if (key == "weights" and value.lower() == "none") else value
    for key in ("checkpoint", "weights"):
        path = kwargs.get(key)
        # a checkpoint is always a file; weights also take names (auto, imagenet, hub...): a file if it looks like one
        looks_like_file = key == "checkpoint" or (isinstance(path, str)
                                                  and (os.sep in path or bool(os.path.splitext(path)[1])))
        if isinstance(path, str) and looks_like_file and not os.path.isfile(path):
            raise CommandError("--%s %s: no such file" % (key, path))
    if args.weights is not None:
        try:
            check_model_args(method, {"weights": None})
        except CommandError:
            raise CommandError("--weights: model %s has no pretrained backbone weights to choose" % method)
    check_model_args(method, {k: v for k, v in kwargs.items() if k != "checkpoint"})
    return kwargs


def _build(method: str, kwargs: dict):
    from semcorr.cli import CommandError
    from semcorr.models import build_model

    try:
        return build_model(method, **kwargs)
    except TypeError as e:
        if "checkpoint" in kwargs and "checkpoint" in str(e):
            raise CommandError("--method %s takes no --checkpoint (it has no trained weights of its own)" % method)
        if "unexpected keyword" in str(e) or "got an unexpected" in str(e):
            raise CommandError("--model-arg: %s" % e)
        raise


# ---------------------------------------------------------------------------------------------------------
# the command


def run(args) -> int:
    from semcorr.cli import CommandError
    from semcorr.commands._checks import check_device, check_folder, check_image, check_method, check_output

    # 1. every input, before the model is built
    if (args.src is None) != (args.tgt is None):
        raise CommandError("give both SRC and TGT, or neither (to use the built-in sample pair)")
    if args.pairs is not None and args.src is not None:
        raise CommandError("give SRC TGT or --pairs LIST.csv, not both")
    if args.pairs is None and args.save_format != "npz":
        raise CommandError("--save-format is for --pairs; for one pair the extension of --save FILE.%s decides"
                           % args.save_format)
    method = check_method(args.method or _trained_method(args.checkpoint) or "nn")
    kwargs = _model_kwargs(args, method)
    device = check_device(args.device)
    if args.pairs is not None:
        if args.save is not None:
            raise CommandError("with --pairs every pair is saved into --out as NAME.%s (--save-format); "
                               "--save FILE is for one pair" % args.save_format)
        pairs = read_pairs(args.pairs)
        sizes = {}
        for name, src, tgt in pairs:
            sizes[src] = check_image(src, "--pairs %s: src" % args.pairs)
            sizes[tgt] = check_image(tgt, "--pairs %s: tgt" % args.pairs)
        out_dir = args.out or "matches"
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise CommandError("--out %s: with --pairs, --out is a folder; this is a file" % out_dir)
        if not os.path.isdir(out_dir):
            check_folder(os.path.dirname(os.path.abspath(out_dir)), "--out", out_dir)
        elif not os.access(out_dir, os.W_OK):
            raise CommandError("--out %s: folder is not writable" % out_dir)
        if not args.no_draw:
            _picture_types()  # matplotlib imports before the model, not after the first pair
    else:
        src_hw = check_image(args.src, "SRC") if args.src is not None else None
        tgt_hw = check_image(args.tgt, "TGT") if args.tgt is not None else None
        out = None if args.no_draw else check_output(args.out or "matches.png", "--out", _picture_types(), ".png")
        save = check_output(args.save, "--save", SAVE_FORMATS) if args.save is not None else None

    # 2. the model, once
    model = _build(method, kwargs).to(device)
    if args.pairs is not None:
        return _run_pairs(args, method, model, device, pairs, sizes, out_dir)
    return _run_one(args, method, model, device, src_hw, tgt_hw, out, save)


def _match(model, src_np, tgt_np, device):
    import torch

    src, tgt = _tensor(src_np, device), _tensor(tgt_np, device)
    t0 = time.perf_counter()
    with torch.no_grad():
        m = model.match(src, tgt)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return m, time.perf_counter() - t0


def _load_pair(src, tgt, size, hw_src, hw_tgt):
    """Both images at ``size`` (warning on large upscaling)."""
    from semcorr.cli import CommandError
    from semcorr.commands._checks import warn_upscale

    for path, hw in ((src, hw_src), (tgt, hw_tgt)):
        warn_upscale(path, hw, _resized_hw(hw, size))
    try:
        return load_image(src, size), load_image(tgt, size)
    except (OSError, ValueError, SyntaxError) as e:  # passed the header check, but the pixels do not decode
        raise CommandError("cannot decode the image data of %s / %s: %s" % (src, tgt, str(e).splitlines()[0]))


def _draw_matches(args, method, m, src_np, tgt_np, out, untrained):
    import torch

    mutual = m.extras.get("mutual")
    conf = m.confidence[0].flatten()
    order = torch.argsort(conf, descending=True)
    if mutual is not None:
        order = order[mutual[0].flatten()[order]]
    keep = order[: max(0, args.num_draw)].cpu()
    src_pts = m.source_pixels().reshape(-1, 2).cpu()[keep]
    tgt_pts = m.target_pixels()[0].reshape(-1, 2).cpu()[keep]
    _draw(src_np, tgt_np, src_pts, tgt_pts, out, untrained,
          title="%s: %d most confident %smatches" % (method, len(keep), "mutual " if mutual is not None else ""))


def _run_one(args, method, model, device, src_hw, tgt_hw, out, save) -> int:
    from semcorr.models import untrained_line

    untrained = untrained_line(model)
    pair = None
    if args.src is None:
        from semcorr.data.sample import sample_pair

        size = args.size or 512  # 0: the sample photo's own size (astronaut, 512 x 512)
        pair = sample_pair(seed=args.seed, size=size)
        src_np, tgt_np = pair.src_img, pair.tgt_img
        src_name = "built-in sample (astronaut)"
        tgt_name = "its random affine+TPS warp, seed %d" % args.seed
        src_hw = tgt_hw = (size, size)
    else:
        src_np, tgt_np = _load_pair(args.src, args.tgt, args.size, src_hw, tgt_hw)
        src_name, tgt_name = args.src, args.tgt
    m, elapsed = _match(model, src_np, tgt_np, device)

    Hs, Ws = m.grid_size
    mutual = m.extras.get("mutual")
    backbone = getattr(model, "backbone_name", None)
    print("method:     %s%s" % (method, " (backbone %s)" % backbone if backbone else ""))
    if untrained:
        print(untrained)  # every figure below comes from random weights: say so beside them
    print("source:     %s, %dx%d (HxW)" % (src_name, src_np.shape[0], src_np.shape[1]))
    print("target:     %s, %dx%d (HxW)" % (tgt_name, tgt_np.shape[0], tgt_np.shape[1]))
    tgt_grid = m.extras.get("tgt_grid")
    print("grid:       %dx%d source cells%s" % (Hs, Ws, " -> %dx%d target cells" % tuple(tgt_grid) if tgt_grid else ""))
    print("time:       %.3f s (%s)" % (elapsed, device))
    print("matches:    %d%s" % (Hs * Ws, ", %d mutual nearest neighbours" % int(mutual.sum()) if mutual is not None
                                else ""))
    print("confidence: mean %.4f" % float(m.confidence.mean()))

    if pair is not None:
        src_kps, gt_kps = pair.kps_tensors(device)
        pred = m.transfer_keypoints(src_kps)
        nvalid = int((gt_kps >= 0).all(-1).sum())
        L = max(tgt_np.shape[:2])
        for alpha in (0.05, 0.1):
            v = float(pck_img(pred, gt_kps, tgt_np.shape[:2], alpha)[0])
            print("PCK@%.2f:   %.4f  (alpha_img, L = %d px, %d keypoints)" % (alpha, v, L, nvalid))
        if out is not None:
            err = (pred - gt_kps).norm(dim=-1)[0].cpu()
            _draw(src_np, tgt_np, src_kps[0].cpu(), pred[0].cpu(), out, untrained, correct=(err <= 0.1 * L).numpy(),
                  gt_kps=gt_kps[0].cpu(), title="%s: green = within 0.1*max(H,W) of the true position (white x)"
                  % method)
    elif out is not None:
        _draw_matches(args, method, m, src_np, tgt_np, out, untrained)
    if out is not None:
        print("wrote:      %s" % out)
        _draw_masks(m, src_np, tgt_np, out, untrained)
    if save is not None:
        rec = matches_record(m, src_hw, tgt_hw, method, src_name, tgt_name)
        save_matches(save, rec, dense_flow(m, src_hw, tgt_hw) if save.lower().endswith(".flo") else None)
        print("saved:      %s" % save)
    return 0


def _run_pairs(args, method, model, device, pairs, sizes, out_dir) -> int:
    from semcorr.models import untrained_line

    untrained = untrained_line(model)
    os.makedirs(out_dir, exist_ok=True)
    print("method:     %s, %d pairs from %s -> %s/" % (method, len(pairs), args.pairs, out_dir.rstrip("/")))
    if untrained:
        print(untrained)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pairs), desc="match", unit="pair", file=sys.stderr, dynamic_ncols=True)
    rows, total = [], 0.0
    ext = "." + args.save_format
    for name, src, tgt in pairs:
        src_np, tgt_np = _load_pair(src, tgt, args.size, sizes[src], sizes[tgt])
        m, elapsed = _match(model, src_np, tgt_np, device)
        total += elapsed
        rec = matches_record(m, sizes[src], sizes[tgt], method, src, tgt)
        save_matches(os.path.join(out_dir, name + ext), rec,
                     dense_flow(m, sizes[src], sizes[tgt]) if ext == ".flo" else None)
        if not args.no_draw:
            _draw_matches(args, method, m, src_np, tgt_np, os.path.join(out_dir, name + ".png"), untrained)
        rows.append({"name": name, "src": src, "tgt": tgt, "matches": int(rec["grid"].prod()),
                     "mutual": int(rec["mutual"].sum()) if rec["has_mutual"] else "",
                     "mean_confidence": "%.6f" % float(rec["confidence"].mean()), "seconds": "%.4f" % elapsed})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    mutual = [r["mutual"] for r in rows if r["mutual"] != ""]
    print("pairs:      %d matched, %.3f s per pair (%s)" % (len(rows), total / len(rows), device))
    if mutual:
        print("mutual:     %.1f mutual nearest neighbours per pair" % (sum(mutual) / len(mutual)))
    print("saved:      %s/NAME%s%s, summary.csv" % (out_dir.rstrip("/"), ext, "" if args.no_draw else ", NAME.png"))
    return 0


# ---------------------------------------------------------------------------------------------------------
# pictures


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


def _draw_masks(m, src_np, tgt_np, out, untrained) -> None:
    """Any model predicting foreground masks (``extras["masks"]``: {"src": (B,1,H,W), "tgt": ...} or a list):
    ``<out>_masks.<ext>`` beside the match picture."""
    masks = m.extras.get("masks")
    if masks is None:
        return
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
    root, ext = os.path.splitext(out)
    mask_out = root + "_masks" + ext
    fig.savefig(mask_out, dpi=100)
    print("masks:      %s" % mask_out)
