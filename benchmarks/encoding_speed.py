"""Bench sections before the head: per-review vs batched tokenization, and the frozen encoder's
tokens/s at each precision."""

from __future__ import annotations

import time

import numpy as np
import torch
from common import precisions_for, print_table, sync

from sentiment.data.batching import length_sorted_batches, pad_ids
from sentiment.encoding.tokenization import encode_texts
from sentiment.training import state_cache


def slow_tokenize(tokenizer, texts, max_length):
    """The homework's tokenizer: one review at a time, head truncation."""
    out = []
    for t in texts:
        toks = tokenizer.tokenize(t)[: max_length - 2]
        out.append([tokenizer.cls_token_id] + tokenizer.convert_tokens_to_ids(toks)
                   + [tokenizer.sep_token_id])
    return out


def bench_tokenize(tokenizer, texts, max_length, reps=2) -> dict:
    slow, fast = [], []
    for _ in range(reps):  # interleaved
        t = time.perf_counter()
        a = slow_tokenize(tokenizer, texts, max_length)
        slow.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = encode_texts(tokenizer, texts, max_length, "head")
        fast.append(time.perf_counter() - t)
    same = float(np.mean([x == y for x, y in zip(a, b)]))
    s, f = min(slow), min(fast)
    res = {"reviews": len(texts), "slow_s": s, "fast_s": f, "slow_reviews_per_s": len(texts) / s,
           "fast_reviews_per_s": len(texts) / f, "speedup": s / f, "identical_ids": same,
           "mean_tokens": float(np.mean([len(x) for x in b]))}
    print_table(["tokenizer", "seconds", "reviews/s", "speedup"],
                [["per-review tokenize+convert_tokens_to_ids (homework)", f"{s:.2f}",
                  f"{len(texts) / s:,.0f}", "1.00x"],
                 ["batched fast encode_texts (ours)", f"{f:.2f}", f"{len(texts) / f:,.0f}",
                  f"{s / f:.1f}x"]],
                title=f"Tokenization of {len(texts)} reviews at max_length {max_length} "
                      f"(best of {reps}; identical ids: {same:.1%})")
    return res


def quantized(encoder):
    return torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)


def bench_encoder(encoder, tokenizer, ids, device, reps=2, token_budget=8192) -> dict:
    """Tokens/s of the frozen encoder alone, on length-sorted batches (as the cache builds them)."""
    lengths = np.array([len(x) for x in ids])
    batches = [pad_ids([ids[i] for i in idx], tokenizer.pad_token_id)
               for idx in length_sorted_batches(lengths, token_budget=token_budget)]
    n_tok = int(lengths.sum())
    runners = {p: (quantized(encoder) if p == "int8" else encoder) for p in precisions_for(device)}
    times: dict = {p: [] for p in runners}
    for p, enc in runners.items():  # warm-up
        state_cache.encode_batch(enc, *batches[-1], device, p)
    for _ in range(reps):
        for p, enc in runners.items():
            sync(device)
            t = time.perf_counter()
            for b, m in batches:
                state_cache.encode_batch(enc, b, m, device, p)
            sync(device)
            times[p].append(time.perf_counter() - t)
    res = {"reviews": len(ids), "tokens": n_tok, "precisions": {}}
    base = n_tok / min(times["fp32"])
    rows = []
    for p in runners:
        tps = n_tok / min(times[p])
        res["precisions"][p] = {"tokens_per_s": tps, "speedup_vs_fp32": tps / base}
        rows.append([p, f"{tps:,.0f}", f"{tps / base:.2f}x"])
    print_table(["encoder precision", "tokens/s", "vs fp32"], rows,
                title=f"Frozen encoder on {device}: {len(ids)} reviews, {n_tok:,} tokens, "
                      f"length-sorted batches of <= {token_budget} tokens (best of {reps})")
    return res
