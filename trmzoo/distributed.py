"""Process-group helpers for ``torchrun``: one process per device, gradients summed.

The official code sums gradients with ``all_reduce`` after backward (the loss is
already divided by the global batch); we do the same rather than wrapping the
model in DistributedDataParallel, whose ``forward`` hook does not fit a model that
is called through ``step``. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from trmzoo.errors import TrmzooError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # the process group was created by init_distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_int(name: str, default: int) -> int:
    """A whole number from the environment (torchrun sets these), or a one-line error naming the variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise TrmzooError(f"environment variable {name}={value!r}: not a whole number (torchrun sets it)") from None


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on CUDA, gloo otherwise."""
    world = env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    if device.type == "cuda":
        torch.cuda.set_device(device)  # object collectives and NCCL use the current device
    owns = not dist.is_initialized()
    if owns:
        store, rank, size = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
        if attempt is not None:
            # torchrun's agent keeps one store across restarts: a restarted group must not read the
            # addresses the failed one left there (it would wait on dead processes)
            store = dist.PrefixStore(f"trmzoo/attempt_{attempt}", store)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", store=store, rank=rank,
                                world_size=size)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), owns_group=owns)


def elastic_restart_id() -> str | None:
    """torchrun's id of this launch (``--rdzv-id``; a fresh one under ``--standalone``) when this
    process belongs to a worker group torchrun restarted after a failure (``--max-restarts``), else None."""
    if env_int("TORCHELASTIC_RESTART_COUNT", 0) <= 0:
        return None
    return os.environ.get("TORCHELASTIC_RUN_ID")


def elastic_run_id() -> str | None:
    """torchrun's id of this launch, None outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


def shutdown(info: DistInfo) -> None:
    """Leave the process group together (a process exiting while another still talks can abort it)."""
    if info.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_state(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's parameters and buffers, so all start from the same weights."""
    if info.world_size == 1:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor, src=0)


def all_reduce_grads(model: torch.nn.Module, info: DistInfo) -> None:
    if info.world_size == 1:
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``tensor`` (same shape everywhere) along dim 0, in rank order."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def all_reduce_sum(values: dict[str, torch.Tensor], info: DistInfo) -> dict[str, torch.Tensor]:
    if info.world_size == 1:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].double() for k in keys])
    dist.all_reduce(stacked)
    return dict(zip(keys, stacked))


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every process's ``obj`` in rank order on rank 0 (None elsewhere)."""
    if info.world_size == 1:
        return [obj]
    gathered = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def broadcast_from_main(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every process."""
    if info.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def local_device(choice: str, source: str = "train.device") -> torch.device:
    """``auto`` picks CUDA (this process's LOCAL_RANK), then MPS, then the CPU; a name that is not a
    device, or a device this machine lacks, is an error naming ``source`` (where the choice came from)."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError):
        raise TrmzooError(f"{source} {choice!r}: not a device name (auto, cpu, cuda, cuda:N, mps)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise TrmzooError(f"{source} {choice!r}: this machine has no {device.type} device (use auto or cpu)")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", env_int("LOCAL_RANK", 0))
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise TrmzooError(f"{source} {choice!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
