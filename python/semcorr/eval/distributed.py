"""Distributed evaluation on ``torch.distributed``.

``semcorr eval`` run under ``torchrun --nproc_per_node N`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) shards the pairs over the
processes and sums the per-process results:

* Sharding: :class:`UnpaddedDistributedSampler`, a ``DistributedSampler`` that does **not**
  pad the index list to a multiple of the world size. The stock sampler repeats the first
  indices so that every rank gets the same count, which would count those pairs twice;
  evaluation has no collective inside the loop, so ranks may do unequal work.
* Reduction: every metric is accumulated as integers (counts, and per-pair fractions in
  fixed point with 40 fractional bits, see :mod:`semcorr.eval.runner`). Integer sums are
  associative, so the all-reduced totals — and every number derived from them — are exactly
  those of a single process, whatever the sharding.
* Backend: ``nccl`` when CUDA is used, else ``gloo``.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Dict, Iterator, List

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

__all__ = ["DistInfo", "setup", "cleanup", "UnpaddedDistributedSampler", "all_reduce_counts",
           "barrier", "broadcast_object", "is_distributed_env"]


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    owns_group: bool = False       # True when setup() created the process group

    @property
    def active(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed_env() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | None = None) -> DistInfo:
    """Join the process group described by the torchrun environment (if any).

    ``device``: "cpu", "cuda" or None (CUDA when available). Under torchrun with CUDA each
    process takes ``cuda:LOCAL_RANK``.
    """
    want_cuda = (device is None and torch.cuda.is_available()) or (device or "").startswith("cuda")
    if want_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available")
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        dev = torch.device(f"cuda:{local}") if want_cuda else torch.device("cpu")
        return DistInfo(rank, world, local, dev, dist.get_backend(), owns_group=False)
    if not is_distributed_env():
        dev = torch.device(device if device not in (None, "cuda") else ("cuda" if want_cuda else "cpu"))
        return DistInfo(device=dev)
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if want_cuda:
        torch.cuda.set_device(local)
        dev, backend = torch.device(f"cuda:{local}"), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev, backend, owns_group=True)


def cleanup(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


class UnpaddedDistributedSampler(DistributedSampler):
    """``DistributedSampler`` without the padding duplicates: rank ``r`` of ``W`` gets
    positions ``r, r + W, r + 2W, ...`` of the (optionally shuffled) index list, so the ranks
    together see every item exactly once and the last ranks may get one item fewer."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle: bool = False, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        n = len(self.dataset)
        self.num_samples = max(0, math.ceil((n - self.rank) / self.num_replicas))
        self.total_size = n

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        return iter(order[self.rank:n:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_counts(info: DistInfo, counts: Dict[str, Dict[str, int]]) -> Dict[str, Dict[str, int]]:
    """Sum ``{group: {metric: int}}`` over all ranks (missing entries count as 0).

    The key sets may differ between ranks (a rank may see no pair of some category): their
    union is gathered first so that every rank reduces the same vector in the same order.
    """
    if not info.active:
        return {g: dict(m) for g, m in counts.items()}
    keys = sorted((g, m) for g, ms in counts.items() for m in ms)
    gathered: List[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, keys)
    union = sorted({tuple(k) for ks in gathered for k in ks})
    vec = torch.tensor([counts.get(g, {}).get(m, 0) for g, m in union], dtype=torch.int64,
                       device=info.device if info.backend == "nccl" else "cpu")
    if vec.numel():
        dist.all_reduce(vec, op=dist.ReduceOp.SUM)
    out: Dict[str, Dict[str, int]] = {}
    for (g, m), v in zip(union, vec.tolist()):
        out.setdefault(g, {})[m] = int(v)
    return out
