"""Bench section: SentimentModel.predict_proba (the registered model's code path), one review
at a time in fp32 as the homework predicts, vs batched and length-sorted at each precision."""

from __future__ import annotations

import time

import numpy as np
from common import precisions_for, print_table, sync

from sentiment.model.predict import SentimentModel


def bench_predict(run_dir: str, texts, labels, device, batch_size: int) -> dict:
    labels = np.asarray(labels)
    models = {}
    default_prec = None
    for p in precisions_for(device):
        models[p] = SentimentModel.load(run_dir, device=str(device), precision=p,
                                        batch_size=batch_size)
    default = SentimentModel.load(run_dir, device=str(device), batch_size=batch_size)
    default_prec = default.precision
    del default

    def timed(fn):
        sync(device)
        t = time.perf_counter()
        probs = fn()
        sync(device)
        return probs, time.perf_counter() - t

    models["fp32"].predict_proba(texts[:2])  # warm-up
    rows, res = [], {"reviews": len(texts), "default_precision": default_prec, "variants": {}}
    base_probs, base_s = timed(lambda: np.concatenate(
        [models["fp32"].predict_proba([t]) for t in texts]))
    variants = [("per-review, fp32, unsorted (homework predict_sentiment loop)", "baseline",
                 base_probs, base_s)]
    for p in precisions_for(device):
        probs, s = timed(lambda p=p: models[p].predict_proba(texts))
        variants.append((f"batched {batch_size}, length-sorted, {p}"
                         + (" (ours: default)" if p == default_prec else ""), p, probs, s))
    for name, key, probs, s in variants:
        acc = float(((probs >= 0.5) == labels).mean())
        agree = float(((probs >= 0.5) == (base_probs >= 0.5)).mean())
        res["variants"][key] = {"name": name, "seconds": s, "reviews_per_s": len(texts) / s,
                                "speedup": base_s / s, "accuracy": acc,
                                "agreement_with_fp32": agree,
                                "max_abs_prob_diff": float(np.abs(probs - base_probs).max())}
        rows.append([name, f"{len(texts) / s:,.1f}", f"{base_s / s:.2f}x", f"{acc * 100:.2f}",
                     f"{agree * 100:.1f}", f"{np.abs(probs - base_probs).max():.4f}"])
    ours = res["variants"][default_prec]
    res["predict_speedup"] = ours["speedup"]
    res["predict_accuracy"] = ours["accuracy"]
    res["predict_baseline_accuracy"] = res["variants"]["baseline"]["accuracy"]
    print_table(["SentimentModel.predict_proba", "reviews/s", "speedup", "test acc %",
                 "agree w/ fp32 %", "max |dp|"], rows,
                title=f"Batch prediction of {len(texts)} test reviews on {device} "
                      "(the registered-model code path)")
    return res
