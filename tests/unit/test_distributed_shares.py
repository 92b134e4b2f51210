"""How a global batch is dealt out to torchrun's ranks, and how many processes a pipeline's
training step asks for; without starting a process group (the two-process training itself is
tests/integration/test_distributed.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.training import distributed


def _shares(batch, world: int, mp) -> list[np.ndarray]:
    out = []
    for r in range(world):
        mp.setenv("WORLD_SIZE", str(world))
        mp.setenv("RANK", str(r))
        out.append(distributed.shard(batch))
    return out


@pytest.mark.parametrize("size,world", [(16, 2), (7, 2), (7, 3), (1, 2), (5, 8)])
def test_ranks_share_each_batch_in_order_once(size, world, monkeypatch):
    batch = np.random.default_rng(size).permutation(100)[:size]
    shares = _shares(batch, world, monkeypatch)
    assert np.array_equal(np.concatenate(shares), batch)  # every review once, in batch order
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1


def test_alone_the_batch_is_whole(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert not distributed.active() and distributed.is_main()
    assert np.array_equal(distributed.shard([3, 1, 2]), [3, 1, 2])
    assert distributed.sum_numbers(1.5, 2) == [1.5, 2]
    assert distributed.share("x") == "x"


def test_process_count_from_the_parameter_or_the_workers_job_variable(monkeypatch):
    pytest.importorskip("mlflow")
    from sentiment.tracking.torchrun_training import PROCESSES_ENV, process_count
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    assert process_count(None) == 1
    monkeypatch.setenv(PROCESSES_ENV, "4")
    assert process_count(None) == 4
    assert process_count(2) == 2
    monkeypatch.setenv(PROCESSES_ENV, "four")
    with pytest.raises(ValueError, match=f"{PROCESSES_ENV}='four' is not a whole number"):
        process_count(None)
    with pytest.raises(ValueError, match="at least 1"):
        process_count(0)
