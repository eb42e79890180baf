"""Distributed evaluation: the unpadded sampler covers every pair exactly once, and
``semcorr eval`` under torchrun with 2 CPU processes (gloo, 127.0.0.1) gives exactly the
numbers of one process, with an uneven number of pairs."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from torch.utils.data import DistributedSampler

from semcorr.eval.distributed import UnpaddedDistributedSampler
from semcorr.eval.runner import read_records

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n,world", [(7, 2), (7, 3), (2, 3), (6, 3), (1, 2), (0, 2)])
def test_unpadded_sampler_covers_each_index_once(n, world):
    data = list(range(n))
    shards = [list(UnpaddedDistributedSampler(data, num_replicas=world, rank=r)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == data
    assert [len(s) for s in shards] == [len(UnpaddedDistributedSampler(data, num_replicas=world, rank=r))
                                        for r in range(world)]
    assert max(map(len, shards), default=0) - min(map(len, shards), default=0) <= 1


def test_stock_sampler_would_double_count_the_tail():
    # why the unpadded sampler exists: the stock one repeats index 0 to even out 7 over 2 ranks
    data = list(range(7))
    stock = [i for r in range(2) for i in DistributedSampler(data, num_replicas=2, rank=r, shuffle=False)]
    assert len(stock) == 8 and stock.count(0) == 2


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _eval_args(out, method, limit):
    return ["--method", method, "--dataset", "synthetic", "--limit", str(limit), "--batch-size", "2",
            "--out", str(out), "--no-figures", "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize("method", ["identity", "nn"])
def test_two_gloo_processes_match_one_process_exactly(tmp_path, method):
    limit = 5                                   # odd: rank 0 gets 3 pairs, rank 1 gets 2
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "semcorr.commands.eval"] + _eval_args(one, method, limit),
                   check=True, env=_env(), cwd=tmp_path, capture_output=True, timeout=120)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "semcorr.commands.eval"] + _eval_args(two, method, limit)
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r1 = json.loads((one / "results.json").read_text())
    r2 = json.loads((two / "results.json").read_text())
    assert r1["world_size"] == 1 and r2["world_size"] == 2
    assert r2["groups"] == r1["groups"]         # exactly, not approximately
    assert r2["pairs"] == limit and r2["groups"]["all"]["pairs"] == limit
    # each rank wrote its own shard; together every pair once
    per_rank = {p.name: sum(1 for _ in open(p)) for p in (two / "pairs").glob("pairs-rank*.jsonl")}
    assert per_rank == {"pairs-rank0.jsonl": 3, "pairs-rank1.jsonl": 2}
    assert sorted(read_records(two)) == list(range(limit))
    assert "2 processes (gloo)" in proc.stderr
