"""Match two images and save the matches (the Python side of `semcorr match SRC TGT --save matches.npz`).

    python examples/match_two_images.py                       # scikit-image's cat photo against a crop of it
    python examples/match_two_images.py SRC.jpg TGT.jpg --method sfnet --checkpoint best_checkpoint.pt

Writes OUT (default matches.npz; .json works too): one match per source-grid cell, in pixels of the image files
(format: semcorr.commands.match's docstring), and prints the most confident mutual matches.
"""
import argparse
import os
import tempfile

import torch

from semcorr.commands.match import load_image, load_matches, matches_record, save_matches
from semcorr.models import build_model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", nargs="?")
    p.add_argument("tgt", nargs="?")
    p.add_argument("--method", default="nn")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--size", type=int, default=240, help="longer side the model works at")
    p.add_argument("--out", default="matches.npz")
    args = p.parse_args(argv)

    src_path, tgt_path = args.src, args.tgt
    if src_path is None:  # the bundled sample: a photo and a crop of it (true motion: 20 px left, 15 px up)
        from skimage import data, io

        folder = tempfile.mkdtemp()
        src_path, tgt_path = os.path.join(folder, "cat.png"), os.path.join(folder, "cat_crop.png")
        io.imsave(src_path, data.chelsea())
        io.imsave(tgt_path, data.chelsea()[15:, 20:])

    model = build_model(args.method, **({"checkpoint": args.checkpoint} if args.checkpoint else {}))
    src_np, tgt_np = load_image(src_path, args.size), load_image(tgt_path, args.size)
    to_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731  (H, W, 3) -> (1, 3, H, W)
    with torch.no_grad():
        matches = model.match(to_tensor(src_np), to_tensor(tgt_np))

    # sizes of the files, so that the saved points are in their pixels, not in the resized images'
    from PIL import Image

    sizes = [Image.open(path).size[::-1] for path in (src_path, tgt_path)]
    record = matches_record(matches, sizes[0], sizes[1], args.method, src_path, tgt_path)
    save_matches(args.out, record)

    saved = load_matches(args.out)
    best = saved["confidence"].argsort()[::-1]
    best = [i for i in best if saved["mutual"][i]][:5]
    print("%d matches (%d mutual) saved to %s; the most confident:" % (len(saved["confidence"]),
                                                                     saved["mutual"].sum(), args.out))
    for i in best:
        (xs, ys), (xt, yt) = saved["src_points"][i], saved["tgt_points"][i]
        print("  (%6.1f, %6.1f) -> (%6.1f, %6.1f)   confidence %.3f" % (xs, ys, xt, yt, saved["confidence"][i]))
    return saved


if __name__ == "__main__":
    main()
