"""Batch composition: length-bucketed training batches and length-sorted inference batches."""

from __future__ import annotations

import numpy as np
import torch


def pad_ids(seqs, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences to the batch's longest: (ids [B, T] long, attention mask [B, T])."""
    lens = [len(s) for s in seqs]
    ids = np.full((len(seqs), max(lens)), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, (s, n) in enumerate(zip(seqs, lens)):
        ids[r, :n] = s
        mask[r, :n] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def length_sorted_batches(lengths: np.ndarray, batch_size: int | None = None,
                          token_budget: int | None = None) -> list[np.ndarray]:
    """Inference batches of similar length (longest first), capped by count or padded tokens."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[start]])
        if token_budget is not None:
            size = max(1, token_budget // max(longest, 1))
            if batch_size is not None:
                size = min(size, batch_size)
        else:
            size = batch_size or len(order)
        batches.append(order[start:start + size])
        start += size
    return batches


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     pool_batches: int = 100) -> list[np.ndarray]:
    """Training batches as torchtext's BucketIterator made them: shuffle, sort within pools of
    `pool_batches` batches by length, cut into batches, shuffle the batch order."""
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Unsorted batches (the baseline a benchmark compares bucketing against)."""
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
