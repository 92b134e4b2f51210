"""Data-parallel training over several processes started by torchrun (gloo on CPU, NCCL on
CUDA): the process group, who writes, each rank's share of a batch, and the sums across ranks.

`--batch-size` stays the *global* batch: every rank walks the same seeded, length-bucketed
batch order, and takes its contiguous share of each batch (sizes differ by at most one). Each
rank's loss is the sum over its share divided by the global batch size, times the number of
ranks, so DistributedDataParallel's average of the gradients is exactly the single-process
gradient of the whole batch: N processes compute the model one process computes with the same
config (up to the order of float sums). Rank 0 alone owns the run folder and writes checkpoints,
the model, metrics and the MLflow run; the others read what it wrote after a barrier.

Run alone (no WORLD_SIZE, or 1), every function here is a no-op and training is as before.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import signal
import threading
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# How long a rank waits in a collective for the others (the encoder-state cache of a full
# split is built by rank 0 while the others wait at a barrier: it must fit in this).
TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("SENTIMENT_DIST_TIMEOUT_MIN", "60")))


class ProcessLost(KeyboardInterrupt):
    """Another training process stopped: this one cannot go on alone. Raised like Ctrl-C,
    so it ends the same way (the MLflow run KILLED, one line, `--resume` continues), whether
    the group's loss shows first as a failed collective or as torchrun's SIGTERM."""

# What gloo and NCCL say when a peer of a collective is gone (DDP's gradient all-reduce
# inside backward() reports it too, outside any of this module's collectives).
PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "connection closed",
             "remote process exited", "NCCL communicator was aborted", "Broken pipe")


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    """True in a process group of more than one process."""
    return world_size() > 1


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: on CUDA, the GPU torchrun's LOCAL_RANK names."""
    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


_peer_lost = False  # set once this process knows the group is broken


def _stop_on_sigterm(signum, frame):
    # torchrun sends SIGTERM to the other ranks when one fails: end like Ctrl-C does (the
    # MLflow run KILLED, one line, `--resume` continues) instead of dying mid-write.
    global _peer_lost
    _peer_lost = True
    raise KeyboardInterrupt("stopped: another training process failed (SIGTERM from torchrun)")


def setup(cfg) -> None:
    """Join the process group torchrun's environment describes (once per process): NCCL
    when training on CUDA, gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    from sentiment.common.compute import select_device
    device = select_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(local_device(device))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    atexit.register(_teardown)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)


def _teardown() -> None:
    if _peer_lost:
        # A group with a dead member hangs the interpreter's shutdown (gloo's threads wait
        # for the peer) until torchrun's SIGKILL. What was to be said and marked is done:
        # leave now, with the status of an interrupted command.
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def peer_guard() -> Iterator[None]:
    """Around a training step of a group: a peer's loss, as gloo or NCCL report it from
    DDP's gradient all-reduce, becomes ProcessLost; any other error stays what it is."""
    if not active():
        yield
        return
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as e:
        if not any(m in str(e) for m in PEER_GONE):
            raise
        global _peer_lost
        _peer_lost = True
        first = " ".join(str(e).split())[:200]
        raise ProcessLost(f"rank {rank()} of {world_size()}: another training process stopped "
                          f"({first})") from None


@contextlib.contextmanager
def _lost() -> Iterator[None]:
    """A collective failing because a peer died reads as one line naming what happened."""
    try:
        yield
    except (RuntimeError, dist.DistBackendError) as e:
        global _peer_lost
        _peer_lost = True
        first = " ".join(str(e).split())[:200]
        raise ProcessLost(f"rank {rank()} of {world_size()}: another training process stopped "
                          f"({first})") from None


def barrier() -> None:
    if active():
        with _lost():
            dist.barrier()


def share(obj):
    """Rank 0's `obj` on every rank (picklable)."""
    if not active():
        return obj
    box = [obj if is_main() else None]
    with _lost():
        dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_numbers(*values: float) -> list[float]:
    """The sum of each value over the ranks (float64)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    with _lost():
        dist.all_reduce(t)
    return t.cpu().tolist()


def sum_array(a: np.ndarray) -> np.ndarray:
    """Element-wise sum over the ranks: with each rank filling only the positions of its own
    reviews (zeros elsewhere), every rank gets the whole array, in order."""
    if not active():
        return a
    t = torch.from_numpy(np.ascontiguousarray(a)).to(_collective_device())
    with _lost():
        dist.all_reduce(t)
    return t.cpu().numpy()


def shard(batch) -> np.ndarray:
    """This rank's contiguous share of a global batch (shares differ by at most one review,
    and one is empty when the batch has fewer reviews than there are ranks)."""
    batch = np.asarray(batch)
    if not active():
        return batch
    return np.array_split(batch, world_size())[rank()]


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (builds a cache), the others after it (they find it
    built): one writer, no race."""
    if not active():
        yield
        return
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


@contextlib.contextmanager
def owned_by_main(cfg, report=print) -> Iterator:
    """`run_folder.owned` on rank 0 only, which picks, checks and locks the run folder; the
    other ranks get its `run_dir` (or its error, raised on every rank) and write nothing."""
    from sentiment.training import run_folder
    setup(cfg)
    if not active():
        with run_folder.owned(cfg, report) as cfg:
            yield cfg
        return
    if is_main():
        with contextlib.ExitStack() as stack:
            try:
                cfg = stack.enter_context(run_folder.owned(cfg, report))
            except BaseException as e:
                share(e)
                raise
            share(cfg.run_dir)
            yield cfg
        return
    got = share(None)
    if isinstance(got, BaseException):
        raise got
    yield cfg.replace(run_dir=got)


class TrainedParts(nn.Module):
    """What DistributedDataParallel wraps: only the parameters that train (the head and any
    trained encoder layers), so the frozen encoder is neither broadcast nor reduced. Its
    forward is the model's forward on a batch of a feature source."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.params = nn.ParameterList([p for p in model.parameters() if p.requires_grad])
        object.__setattr__(self, "model", model)  # not a submodule: DDP sees the trained part

    def forward(self, feats, idx, head_ctx, head) -> torch.Tensor:
        return feats.logits(self.model, idx, head_ctx, head)


def data_parallel(model: nn.Module, device: torch.device):
    """The model's trained parts under DDP (gradients averaged over the ranks), or None when
    training alone."""
    if not active():
        return None
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" else None
    with _lost():
        return DistributedDataParallel(TrainedParts(model), device_ids=ids)
