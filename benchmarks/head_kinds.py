"""Each head (GRU, CNN, Linformer, linear attention) at the Config's sizes, on random encoder
states of one shape: a training step (forward, backward, Adam) and an inference pass per batch,
interleaved in one process so the ratios hold on a noisy machine; then the linear-attention
head's peak memory (torch profiler) against softmax attention as the length doubles.

    python benchmarks/head_kinds.py [--batch 16] [--seq 256] [--reps 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see head_speed.py

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from sentiment.config import HEAD_NAMES, Config  # noqa: E402
from sentiment.model import heads  # noqa: E402
from sentiment.model.gru_scan import head_forward  # noqa: E402


def step_seconds(head, states, lengths, train: bool) -> float:
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    y = torch.ones(states.shape[0])
    head.train(train)
    t0 = time.perf_counter()
    if train:
        # The training path the loop takes (the GRU's merged scan on the CPU).
        loss = nn.functional.binary_cross_entropy_with_logits(
            head_forward(head, states, lengths)[:, 0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    else:
        with torch.inference_mode():
            head(states, lengths)
    return time.perf_counter() - t0


def peak_bytes(head, T: int) -> int:
    """Peak of the CPU memory allocated during one forward and backward (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile
    x = torch.randn(2, T, head.inp.in_features)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        head(x, torch.tensor([T, T])).sum().backward()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    cur = top = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        cur += e.nbytes()
        top = max(top, cur)
    return top


class SoftmaxAttention(nn.Module):
    """Full softmax attention, the quadratic reference."""

    def forward(self, q, k, v, mask):
        s = torch.einsum("bthd,bshd->bhts", q, k) / q.shape[-1] ** 0.5
        s = s.masked_fill(~mask[:, None, None, :], float("-inf"))
        return torch.einsum("bhts,bshd->bthd", s.softmax(-1), v)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--emb", type=int, default=384)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--memory-lengths", default="256,512,1024,2048")
    p.add_argument("--out", default="benchmarks/results/head_kinds.json")
    a = p.parse_args(argv)
    cfg = Config(max_length=max(a.seq, 512))
    torch.manual_seed(0)
    built = {k: heads.build_head(cfg.replace(head=k), a.emb) for k in HEAD_NAMES}
    states = torch.randn(a.batch, a.seq, a.emb)
    lengths = a.seq - torch.randint(0, 4, (a.batch,))
    times = {k: {"train": [], "eval": []} for k in built}
    for h in built.values():
        step_seconds(h, states, lengths, True)  # warm-up
    for _ in range(a.reps):
        for k, h in built.items():
            times[k]["train"].append(step_seconds(h, states, lengths, True))
            times[k]["eval"].append(step_seconds(h, states, lengths, False))
    tokens = int(lengths.sum())
    rows, out = [], []
    gru = np.median(times["gru"]["train"])
    for k, h in built.items():
        tr, ev = np.median(times[k]["train"]), np.median(times[k]["eval"])
        n = sum(p.numel() for p in h.parameters())
        out.append({"head": k, "parameters": n, "train_step_ms": tr * 1e3,
                    "eval_step_ms": ev * 1e3, "train_tokens_per_s": tokens / tr,
                    "eval_tokens_per_s": tokens / ev})
        rows.append([k, f"{n:,}", f"{tr * 1e3:,.0f}", f"{ev * 1e3:,.0f}", f"{tokens / tr:,.0f}",
                     f"{gru / tr:.1f}x"])
    print_table(["head", "parameters", "train step ms", "eval ms", "train tok/s",
                 "train speed vs GRU"], rows,
                title=f"Heads at Config's sizes, batch {a.batch} x {a.seq} tokens, emb {a.emb}, "
                      f"{torch.get_num_threads()} threads, median of {a.reps}, load average "
                      f"{os.getloadavg()[0]:.1f}")
    lin = built["linear_attention"]
    lens = [int(t) for t in a.memory_lengths.split(",")]
    mem = {"linear_attention": [peak_bytes(lin, t) for t in lens]}
    lin.attention = SoftmaxAttention()
    mem["softmax (reference)"] = [peak_bytes(lin, t) for t in lens]
    print_table(["attention"] + [f"T={t} MB" for t in lens], [
        [k] + [f"{b / 2**20:,.1f}" for b in v] for k, v in mem.items()],
        title="Peak CPU memory of one forward+backward, batch 2 (torch profiler)")
    result = {"batch": a.batch, "seq": a.seq, "load_avg": os.getloadavg(), "heads": out,
              "memory_lengths": lens, "peak_bytes": mem}
    write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
