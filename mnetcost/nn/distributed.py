"""The few torch.distributed calls ``mnetcost train`` needs under ``torchrun``.

``torchrun --nproc_per_node=N -m mnetcost train ...`` (or ``torchrun --nproc_per_node=N
$(which mnetcost) train ...``) sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; we
join the process group with NCCL when training on CUDA and gloo otherwise. Without those
variables everything here is a no-op for a single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env() -> Dist:
    """Rank and world size as torchrun sets them (a single process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(rank=int(os.environ.get("RANK", "0")), world=world,
                local_rank=int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))))


def init(dist: Dist, device_type: str) -> None:
    if not dist.enabled:
        return
    import torch.distributed as td

    if not td.is_initialized():
        td.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def shutdown(dist: Dist) -> None:
    if not dist.enabled:
        return
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as td

        td.barrier()


def all_reduce_sum(dist: Dist, tensor):
    """Sum ``tensor`` over ranks in place (and return it); identity for one process."""
    if dist.enabled:
        import torch.distributed as td

        td.all_reduce(tensor, op=td.ReduceOp.SUM)
    return tensor


def broadcast(dist: Dist, value, src: int = 0):
    """Rank ``src``'s picklable ``value`` on every rank."""
    if not dist.enabled:
        return value
    import torch.distributed as td

    box = [value]
    td.broadcast_object_list(box, src=src)
    return box[0]


def gather(dist: Dist, value) -> list:
    """Every rank's picklable ``value``, in rank order, on every rank."""
    if not dist.enabled:
        return [value]
    import torch.distributed as td

    out = [None] * dist.world
    td.all_gather_object(out, value)
    return out
