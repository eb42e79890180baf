"""Load a published checkpoint and match with it.

    python examples/load_published_checkpoint.py ncnet ncnet_pfpascal.pth.tar
    python examples/load_published_checkpoint.py sfnet best_checkpoint.pt
    python examples/load_published_checkpoint.py ncnet ncnet_ivd.pth.tar --backbone resnet50

`build_model(NAME, checkpoint=PATH)` reads the file the method's published code saved (NC-Net's train.py
``.pth.tar``, SFNet's ``{state_dict1, state_dict2}``, MaCoSNet/WeakAlign, Sparse NC-Net, SCNet's ``.mat``...) safely
(``torch.load(weights_only=True)``) and strictly: a missing, unexpected or mis-shaped weight is an error naming it.
Files written by `semcorr train` load the same way. Nothing is downloaded. The script matches the bundled sample
pair (a photo and a known warp of it) and prints the PCK and which parts of the model are still random.
"""
import argparse

import torch

from semcorr.data.sample import sample_pair
from semcorr.models import build_model, untrained_line


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("method")
    p.add_argument("checkpoint")
    p.add_argument("--backbone", default=None, help="when the checkpoint's backbone is not the model's default")
    p.add_argument("--size", type=int, default=240)
    args = p.parse_args(argv)

    kwargs = {"backbone": args.backbone} if args.backbone else {}
    model = build_model(args.method, checkpoint=args.checkpoint, **kwargs)
    print(untrained_line(model) or "%s: every part loaded from %s" % (args.method, args.checkpoint))

    pair = sample_pair(seed=0, size=args.size)
    src, tgt = pair.tensors()
    src_kps, tgt_kps = pair.kps_tensors()
    with torch.no_grad():
        pred = model.match(src, tgt).transfer_keypoints(src_kps)
    valid = (tgt_kps >= 0).all(-1)
    correct = ((pred - tgt_kps).norm(dim=-1) <= 0.1 * args.size) & valid
    pck = float(correct.sum() / valid.sum())
    print("PCK@0.1 on the sample pair: %.3f (%d keypoints)" % (pck, int(valid.sum())))
    return model, pck


if __name__ == "__main__":
    main()
