"""Several training processes (`accelerate launch`, `torchrun`): who am I, and talking to the others.

A launcher starts N copies of the same command and tells each one its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Everything here reads
that environment; without it (a plain `hominem ...`) every helper is a no-op returning its
input, and torch is never imported, so the single-process path is exactly what it was.

Usage in a training loop (the order matters):

    distributed.init()
    model = distributed.prepare(model)          # before building the optimiser
    opt = AdamW(model.parameters(), ...)
    for epoch in ...:
        batches = distributed.shard(all_batches)  # same shuffled list on every rank -> this rank's share
        for b in batches:
            loss = loss_of(model(**b))            # call the wrapped model's forward: that is what syncs grads
            ...
        logged = distributed.all_mean(loss_sum / n)
    best = distributed.unwrap(model)            # for saving, eval, scoring
    if distributed.is_main(): save(best)
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

# How long a rank waits for the others at a barrier / collective. Non-distributed pipeline stages
# run on rank 0 while the others wait, and those can take hours (teacher calls), hence the default.
TIMEOUT_ENV = "HOMINEM_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 24 * 3600


def world() -> tuple[int, int]:
    """(rank, world_size) of this process from the launcher's environment; (0, 1) when not launched."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return rank, size


def is_main() -> bool:
    """True on rank 0 (and in a plain single process): the one that logs, saves and commits."""
    return world()[0] == 0


def active() -> bool:
    """True when this process is one of several (WORLD_SIZE > 1)."""
    return world()[1] > 1


def init() -> None:
    """Join the process group (gloo: works on CPU, and on GPU for these small collectives).

    Idempotent; a no-op in a single process. Uses the env:// rendezvous the launcher set up.
    """
    if not active():
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    rank, size = world()
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    dist.init_process_group("gloo", rank=rank, world_size=size, timeout=timeout)
    # Leave the group cleanly at exit: a gloo process that exits with its group alive can abort
    # ("terminate called without an active exception") when a peer closes its connections first.
    atexit.register(_leave)


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _dist():
    """torch.distributed, initialised (callers have already checked active())."""
    import torch.distributed as dist

    init()
    return dist


def barrier() -> None:
    """Wait until every rank reaches this point. No-op in a single process."""
    if active():
        _dist().barrier()


def all_mean(value: float) -> float:
    """Mean of `value` over all ranks (every rank gets the same number). Identity in a single process."""
    if not active():
        return float(value)
    import torch

    dist = _dist()
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / world()[1]


def broadcast_object(obj: T) -> T:
    """Rank 0's `obj` on every rank (any picklable object; other ranks' argument is ignored)."""
    if not active():
        return obj
    box: list[Any] = [obj]
    _dist().broadcast_object_list(box, src=0)
    return box[0]


def prepare(model):
    """Wrap `model` (an nn.Module, already on its device) in DistributedDataParallel when several ranks run.

    Gradients are averaged across ranks in backward, so every rank keeps identical weights as long as
    each step runs the same optimiser on the same initial weights. DDP broadcasts rank 0's weights at
    wrap time, so random heads need not be seeded identically. find_unused_parameters=True because
    some heads (rationale, scalar, ensemble members) may not take part in every loss. Only calls through
    the wrapper's forward (`model(...)`) sync gradients: do not call methods of the inner module for
    the training loss. Returns `model` unchanged in a single process.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    _dist()
    params = [p for p in model.parameters()]
    on_gpu = bool(params) and params[0].device.type == "cuda"
    device_ids = [params[0].device.index] if on_gpu else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


def unwrap(model):
    """The inner module of a prepare()d model (for saving, evaluation, scoring); `model` itself otherwise."""
    inner = getattr(model, "module", None)
    if inner is not None and type(model).__name__ == "DistributedDataParallel":
        return inner
    return model


def shard(batches: list[T]) -> list[T]:
    """This rank's share of an epoch's batch list; the list itself in a single process.

    Every rank must pass the same list (same seed, same shuffle). Rank r gets batches[r::world],
    trimmed so all ranks get the same number (a rank with one more step would wait forever in
    DDP's gradient all-reduce). When there are fewer batches than ranks, batches are reused
    round-robin so that every rank still takes exactly one step.
    """
    rank, size = world()
    if size <= 1 or not batches:
        return list(batches)
    per_rank = len(batches) // size
    if per_rank == 0:
        return [batches[rank % len(batches)]]
    return list(batches[rank::size][:per_rank])
