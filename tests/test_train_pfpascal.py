"""The default NC-Net config on a PF-PASCAL tree in NC-Net's layout (``PF-dataset-PASCAL/JPEGImages``,
``Annotations/<class>/*.mat``, ``image_pairs/{train,val}_pairs.csv`` with the ``flip`` column), as a user runs it:
``semcorr train ncnet --set data.*.root=...`` (network and image size shrunk for the test)."""
import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch

VOC = {2: "bicycle", 8: "cat"}


def make_tree(root, n_images=6, h=40, w=52):
    img_dir = root / "PF-dataset-PASCAL" / "JPEGImages"
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["2009_%06d" % i for i in range(n_images)]
    for i, name in enumerate(names):
        iio.imwrite(img_dir / (name + ".png"), rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        cls = VOC[2 if i % 2 == 0 else 8]
        ann = root / "PF-dataset-PASCAL" / "Annotations" / cls
        ann.mkdir(parents=True, exist_ok=True)
        kps = rng.uniform(5, 35, size=(4, 2))
        scipy.io.savemat(ann / (name + ".mat"), {"kps": kps, "bbox": np.array([[2, 3, w - 3, h - 4]])})
    (root / "image_pairs").mkdir()

    def rows(pairs):
        return [["PF-dataset-PASCAL/JPEGImages/%s.png" % names[a], "PF-dataset-PASCAL/JPEGImages/%s.png" % names[b],
                 2 if a % 2 == 0 else 8, flip] for a, b, flip in pairs]

    for split, pairs in (("train", [(0, 2, 0), (1, 3, 1), (2, 4, 0), (3, 5, 1), (4, 0, 0)]),
                         ("val", [(0, 4, 0), (1, 5, 0)])):
        with open(root / "image_pairs" / ("%s_pairs.csv" % split), "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["source_image", "target_image", "class", "flip"])
            wr.writerows(rows(pairs))


def test_default_ncnet_config_trains_on_a_pfpascal_tree(tmp_path):
    from semcorr.cli import main

    make_tree(tmp_path / "pf")
    root = str(tmp_path / "pf")
    out = tmp_path / "run"
    args = ["train", "ncnet", "--out", str(out), "--no-progress",
            "--set", "data.train.root=%s" % root, "--set", "data.val.root=%s" % root,
            "--set", "data.pck.root=%s" % root,
            # small network and images; everything else is the published recipe of the default config
            "--set", "model.backbone=hog", "--set", "model.weights=null", "--set", "model.kernel_sizes=[3,3]",
            "--set", "model.channels=[4,1]", "--set", "train.batch_size=2", "--set", "train.epochs=1",
            "--set", "data.train.image_size=48", "--set", "data.val.image_size=48", "--set", "data.pck.image_size=48",
            "--set", "run.workers=0"]
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert main(args) == 0
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["config"]["optimizer"] == {"name": "adam", "lr": 0.0005} and ck["config"]["train"]["seed"] == 1
    assert ck["global_step"] == 2  # 5 training pairs, global batch 2: the incomplete last batch is dropped
    rec = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    # the validation loss runs on val_pairs.csv, the PCK on the PF-PASCAL loader's val split (.mat keypoints)
    assert np.isfinite(rec["val_loss"]) and 0.0 <= rec["val_pck"] <= 1.0
