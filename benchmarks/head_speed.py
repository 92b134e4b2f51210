"""Micro-benchmark of the BiGRU head on CPU/GPU: what makes it fast (kernel, batch size, packed
sequences, threads, precision). All variants run interleaved in one process on the same
random states, so the ratios are comparable even on a noisy machine.

    python benchmarks/head_speed.py [--device cpu] [--seq 200] [--reps 3] [--only scan]
"""

from __future__ import annotations

import os

# On shared or oversubscribed cores, OpenMP's default spin-waiting makes the GRU head's
# thousands of small parallel ops 5-10x slower; passive waiting costs little otherwise.
# It must be set before torch (libgomp) loads. Export OMP_WAIT_POLICY=ACTIVE to compare.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from sentiment.config import Config  # noqa: E402
from sentiment.model.bert_gru import GRUHead, gru_scan  # noqa: E402

KERNELS = {"packed": lambda head, states, lengths: head(states, lengths),
           # the per-direction _VF.gru scans the library trained with before the merged scan
           "unpacked": lambda *a: gru_scan.unpacked_head_forward(*a),
           "scan": lambda *a: gru_scan.scan_head_forward(*a)}


def step_time(head, states, lengths, train: bool, autocast, n_steps: int, kernel="packed") -> float:
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    crit = nn.BCEWithLogitsLoss()
    y = torch.ones(states.shape[0], device=states.device)
    head.train(train)
    sync = torch.cuda.synchronize if states.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(n_steps):
        ctx = torch.enable_grad() if train else torch.inference_mode()
        with ctx, autocast():
            logits = KERNELS[kernel](head, states, lengths)[:, 0].float()
            loss = crit(logits, y)
        if train:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync()
    return (time.perf_counter() - t0) / n_steps


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seq", type=int, default=200, help="tokens per review (all equal, as bucketed)")
    p.add_argument("--emb", type=int, default=384)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--with-bf16", action="store_true", help="also time bf16 autocast (slow on CPU)")
    p.add_argument("--only", default="", help="run only the variants whose name contains this")
    p.add_argument("--out", default="benchmarks/results/head_speed.json")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    cfg = Config()  # the homework's head
    torch.manual_seed(0)
    off = contextlib.nullcontext
    bf16 = lambda: torch.autocast(dev.type, dtype=torch.bfloat16)  # noqa: E731
    threads0, loop0 = torch.get_num_threads(), gru_scan.LOOP_THREADS

    def v(name, bs, packed=True, threads=threads0, prec="fp32", kernel="packed", loop=1):
        return dict(name=name, bs=bs, packed=packed, threads=threads, prec=prec, kernel=kernel,
                    loop_threads=loop)
    # The library trains with the exact merged-direction scan on the CPU (sentiment.model.gru_scan,
    # its per-step ops on one thread) and runs the packed GRU for inference and on the GPU.
    variants = [v("batch 32, packed (inference; GPU training)", 32),
                v("batch 32, padded, no packing (NOT exact)", 32, packed=False),
                v("batch 32, per-direction scans (former CPU training)", 32, kernel="unpacked"),
                v("batch 32, merged scan (CPU training)", 32, kernel="scan"),
                v("batch 16, packed", 16),
                v("batch 16, per-direction scans", 16, kernel="unpacked"),
                v("batch 16, merged scan", 16, kernel="scan"),
                v("batch 128, packed", 128),
                v("batch 128, merged scan", 128, kernel="scan")]
    if dev.type == "cpu" and threads0 > 1:
        variants += [v(f"batch 32, merged scan, loops on {threads0} threads", 32, kernel="scan",
                       loop=None),
                     v("batch 32, packed, 1 thread", 32, threads=1),
                     v("batch 32, merged scan, 1 thread", 32, threads=1, kernel="scan")]
    if a.with_bf16:
        variants.append(v("batch 32, packed, bf16 autocast", 32, prec="bf16"))
    variants = [x for x in variants if a.only in x["name"]]
    times: dict = {v["name"]: {"train": [], "eval": []} for v in variants}
    for rep in range(a.reps):
        for v in variants:
            torch.set_num_threads(v["threads"])
            gru_scan.LOOP_THREADS = v["loop_threads"]
            head = GRUHead(a.emb, cfg.hidden_dim, cfg.output_dim, cfg.n_layers, cfg.bidirectional,
                           cfg.dropout).to(dev)
            states = torch.randn(v["bs"], a.seq, a.emb, device=dev)
            # Bucketed batches: lengths within a few tokens of each other.
            g = torch.Generator().manual_seed(v["bs"])
            lengths = (a.seq - torch.randint(0, 4, (v["bs"],), generator=g)) if v["packed"] else None
            ac = bf16 if v["prec"] == "bf16" else off
            steps = 1 if v["prec"] == "bf16" and dev.type == "cpu" else a.steps
            if rep == 0:
                step_time(head, states, lengths, True, ac, 1, v["kernel"])  # warm-up
            for mode in ("train", "eval"):
                secs = step_time(head, states, lengths, mode == "train", ac, steps, v["kernel"])
                times[v["name"]][mode].append(secs)
        torch.set_num_threads(threads0)
    gru_scan.LOOP_THREADS = loop0
    base = np.median(times[variants[0]["name"]]["train"])
    rows, out = [], []
    for v in variants:
        tr, ev = np.median(times[v["name"]]["train"]), np.median(times[v["name"]]["eval"])
        tokens = v["bs"] * a.seq
        rec = {**v, "train_step_ms": tr * 1e3, "eval_step_ms": ev * 1e3,
               "train_tokens_per_s": tokens / tr, "eval_tokens_per_s": tokens / ev,
               "train_speed_vs_first": (base / variants[0]["bs"]) / (tr / v["bs"])}
        out.append(rec)
        rows.append([v["name"], f"{tr * 1e3:,.0f}", f"{ev * 1e3:,.0f}", f"{tokens / tr:,.0f}",
                     f"{tokens / ev:,.0f}", f"{rec['train_speed_vs_first']:.2f}x"])
    print_table(["head variant", "train step ms", "eval ms", "train tok/s", "eval tok/s",
                 "train tok/s vs first"], rows,
                title=f"BiGRU head ({cfg.n_layers}x{cfg.hidden_dim}, emb {a.emb}) on {dev}, "
                      f"{a.seq} tokens/review, "
                      f"median of {a.reps} interleaved reps, load average {os.getloadavg()[0]:.1f}")
    result = {"device": str(dev), "threads": threads0, "seq": a.seq, "load_avg": os.getloadavg(),
              "variants": out}
    write_json(a.out, result)
    return result


if __name__ == "__main__":
    main()
