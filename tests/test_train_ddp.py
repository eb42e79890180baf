"""``semcorr train`` under torchrun: 2 gloo processes on the CPU take the same optimizer steps as 1 process on the
same global batch (parameters equal to 1e-6 after 3 steps), and rank 0 alone writes the checkpoint and logs.

Both runs are launched the way a user launches them (``python -m torch.distributed.run ... -m semcorr train``)
on localhost with a free port; the model is tiny (HOG features, a 2-layer consensus, 64 px images)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# 2 images x 3 warp kinds x 2 repeats = 12 pairs = 3 global batches of 4
TINY = ["--set", "model.backbone=hog", "--set", "model.weights=null", "--set", "model.kernel_sizes=[3,3]",
        "--set", "model.channels=[4,1]", "--set", "train.epochs=1", "--set", "train.batch_size=4",
        "--set", "data.train={kind: synthetic, image_size: 64, repeats: 2, images: [astronaut, chelsea]}",
        "--set", "data.val=null", "--set", "data.pck=null", "--no-progress"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "python")] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, tmp_path):
    r = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, "command failed: %s\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), r.stdout, r.stderr)
    return r


def _one_and_two(tmp_path, method, config, argv, monkeypatch):
    """``semcorr train METHOD`` in this process (no torchrun environment -> no process group) into ``one`` and
    under torchrun with 2 processes into ``two``; returns the folders and their last.pt."""
    from semcorr.cli import main

    one, two = tmp_path / "one", tmp_path / "two"
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        assert main(["train", method, "--config", config, "--out", str(one)] + argv) == 0
    _run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
          "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
          "-m", "semcorr", "train", method, "--config", config, "--out", str(two)] + argv, tmp_path)
    return (one, two, torch.load(one / "last.pt", map_location="cpu", weights_only=True),
            torch.load(two / "last.pt", map_location="cpu", weights_only=True))


@pytest.mark.parametrize("method", ["ncnet", pytest.param("sparse-ncnet", marks=pytest.mark.slow)])
def test_two_gloo_processes_take_the_steps_of_one(tmp_path, method, monkeypatch):
    config = {"ncnet": "ncnet_synthetic", "sparse-ncnet": "sparse_ncnet_synthetic"}[method]
    one, two, a, b = _one_and_two(tmp_path, method, config, TINY, monkeypatch)
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert a["global_step"] == b["global_step"] == 3
    assert a["state_dict"].keys() == b["state_dict"].keys()
    trained = [k for k in a["state_dict"] if k.startswith("consensus.")]
    assert trained
    for k in a["state_dict"]:
        torch.testing.assert_close(b["state_dict"][k], a["state_dict"][k], rtol=0, atol=1e-6, msg=k)
    # the steps were taken: the consensus moved away from its (seeded) initialisation
    from semcorr.models import build_model

    torch.manual_seed(a["config"]["train"]["seed"])
    with pytest.warns(UserWarning, match="UNTRAINED"):
        init = build_model(method, **{**a["model_config"], **(a["config"].get("model_train") or {})}).state_dict()
    moved = max(float((a["state_dict"][k] - init[k]).abs().max()) for k in trained)
    assert moved > 1e-4
    # losses of every step are the same global-batch means
    la = [json.loads(x)["loss"] for x in (one / "steps.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (two / "steps.jsonl").read_text().splitlines()]
    assert len(la) == len(lb) == 3
    assert la == pytest.approx(lb, abs=1e-6)
    # rank 0 alone wrote the outputs (one line per step, not two)
    assert sorted(p.name for p in two.iterdir()) == ["curves.png", "last.pt", "log.jsonl", "steps.jsonl"]


# The recipes without augmentation randomness, on tiny settings: 4 pairs = 2 global batches. SGD: Adam turns the
# float32 rounding noise of near-zero gradients into steps of the size of its learning rate (measured 2.6e-5 on
# PMNC's biases), which says nothing about the steps. SFNet is not here: its adaptation layers' BatchNorm uses
# the batch statistics of each process (no SyncBatchNorm; docs/TRAINING.md).
RECIPES = {
    "pmnc": ("pmnc_synthetic", "scorer.", [
        "model.backbone=hog", "model.weights=null", "model.image_size=null", "model.init=random",
        "data.train={dataset: synthetic, image_size: 48, repeats: 1, images: [astronaut, chelsea], "
        "warps: [affine, tps], stereo: false}"]),
    "macosnet": ("macosnet_synthetic", "affine_regressor.", [
        "model.backbone=tiny", "model.image_size=64",
        "data.train={kind: synthetic, image_size: 64, repeats: 1, images: [astronaut, chelsea], "
        "warps: [affine, tps]}"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(RECIPES))
def test_every_recipe_takes_the_same_steps_on_two_processes(tmp_path, method, monkeypatch):
    config, prefix, sets = RECIPES[method]
    argv = [a for s in sets + ["train.epochs=1", "train.batch_size=2", "data.val=null", "data.pck=null",
                               "optimizer={name: sgd, lr: 0.01}"] for a in ("--set", s)] + ["--no-progress"]
    one, two, a, b = _one_and_two(tmp_path, method, config, argv, monkeypatch)
    assert (a["world_size"], b["world_size"]) == (1, 2) and a["global_step"] == b["global_step"] == 2
    assert any(k.startswith(prefix) for k in a["state_dict"])
    for k in a["state_dict"]:
        torch.testing.assert_close(b["state_dict"][k], a["state_dict"][k], rtol=0, atol=1e-6, msg=k)
    la = [json.loads(x)["loss"] for x in (one / "steps.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (two / "steps.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, abs=1e-6)
