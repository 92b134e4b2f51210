"""Bench sections built on whole training runs: homework-style vs ours (cold and warm cache),
head vs head+tail truncation, and the state cache's size on disk."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

from common import loadavg, print_table

from sentiment.config import Config, default
from sentiment.training.loop import TrainHooks, train

# The homework's loop as it was: its frozen encoder run in fp32 on every batch with its dropout
# on (model.train()), batches from torchtext's BucketIterator (shuffled pools sorted by length,
# i.e. `bucket_batches`), validation and test through the encoder again. The frozen head trains
# with the recipe that suits it on a subset (2 epochs, batch 32, Adam 1e-3), not the
# fine-tuning recipe of a preset.
HOMEWORK_LOOP = dict(train_encoder_layers=0, cache_states=False, bucket_batches=True,
                     encoder_precision="fp32", encoder_attention_dropout=None, epochs=2,
                     batch_size=32, lr=1e-3)


def run_train(cfg, splits, label) -> dict:
    gc.collect()
    la0 = loadavg()
    t = time.perf_counter()
    s = train(cfg, splits=splits, hooks=TrainHooks(report=lambda m: None))
    wall = time.perf_counter() - t
    tm = s["timings"]
    # Text -> trained head: tokenization, encoder passes (ours: the cache build, test split
    # included), both epochs with validation. The same stages for every variant.
    training_s = tm["tokenize_s"] + tm["encode_s"] + tm["train_s"]
    return {"label": label, "training_s": training_s, "test_s": tm["test_s"],
            "total_s": tm["total_s"], "wall_s": wall, "timings": tm,
            "test_accuracy": s["test"]["accuracy"], "test_loss": s["test_loss"],
            "best_epoch": s["best_epoch"], "val_acc": [h["val_acc"] for h in s["history"]],
            "train_tokens_per_s": [h["train_tokens_per_s"] for h in s["history"]],
            "encoder_precision": s["encoder_precision"], "state_cache": s["state_cache"],
            "loadavg_before": la0, "loadavg_after": loadavg(), "run_dir": s["run_dir"]}


def bench_train(base: Config, splits, work: Path) -> dict:
    hw = base.replace(**HOMEWORK_LOOP, cache_dir=str(work / "cache-homework"),
                      run_dir=str(work / "run-homework"))
    ours = base.replace(cache_dir=str(work / "cache-ours"), run_dir=str(work / "run-ours"))
    warm = ours.replace(run_dir=str(work / "run-ours-warm"))
    r_hw = run_train(hw, splits, "homework-style: frozen encoder every batch, bucketed, fp32")
    what = ("fine-tune " + (f"top {base.train_encoder_layers} layers" if base.train_encoder_layers > 0
                            else "all layers") if base.train_encoder_layers else "frozen, cached")
    r_cold = run_train(ours, splits, f"ours ({what}), cold cache")
    r_warm = run_train(warm, splits, "ours, re-run with the warm cache")
    res = {"homework": r_hw, "ours_cold": r_cold, "ours_warm": r_warm,
           "train_speedup": r_hw["training_s"] / r_cold["training_s"],
           "train_speedup_end_to_end": r_hw["total_s"] / r_cold["total_s"],
           "cache_hit_speedup": r_cold["training_s"] / r_warm["training_s"],
           "cache_hit_speedup_end_to_end": r_cold["total_s"] / r_warm["total_s"]}
    rows = []
    for r, sp, sp_tot in ((r_hw, 1.0, 1.0),
                          (r_cold, res["train_speedup"], res["train_speedup_end_to_end"]),
                          (r_warm, r_hw["training_s"] / r_warm["training_s"],
                           r_hw["total_s"] / r_warm["total_s"])):
        tm = r["timings"]
        rows.append([r["label"], r["encoder_precision"], f"{tm['tokenize_s']:.1f}",
                     f"{tm['encode_s']:.1f}", f"{tm['train_s']:.1f}", f"{r['training_s']:.1f}",
                     f"{tm['test_s']:.1f}", f"{sp:.2f}x", f"{sp_tot:.2f}x",
                     f"{r['test_accuracy'] * 100:.2f}"])
    print_table(["variant", "prec", "tokenize s", "encode s", "epochs s", "training s",
                 "test s", "train speedup", "incl. test", "test acc %"], rows,
                title=f"Training on the same {len(splits.train)}/{len(splits.valid)}/"
                      f"{len(splits.test)} reviews, seed {base.seed}; ours: {base.epochs} epoch(s), "
                      f"batch {base.batch_size}, "
                      f"max_length {base.max_length} ({base.truncation}); training s = tokenize + "
                      f"encode + epochs. cache-hit speedup: {res['cache_hit_speedup']:.2f}x")
    return res


def bench_truncation(base: Config, splits, work: Path, done: dict | None) -> dict:
    res = {}
    for trunc in ("head", "head_tail"):
        if done and done["config"]["truncation"] == trunc:
            r = done
        else:
            cfg = base.replace(truncation=trunc, cache_dir=str(work / "cache-ours"),
                               run_dir=str(work / f"run-trunc-{trunc}"))
            r = run_train(cfg, splits, f"truncation={trunc}")
        res[trunc] = {"test_accuracy": r["test_accuracy"], "test_loss": r["test_loss"],
                      "val_acc": r["val_acc"]}
    res["head_tail_minus_head_points"] = 100 * (res["head_tail"]["test_accuracy"]
                                                - res["head"]["test_accuracy"])
    print_table(["truncation", "test acc %", "test loss"],
                [[k, f"{res[k]['test_accuracy'] * 100:.2f}", f"{res[k]['test_loss']:.4f}"]
                 for k in ("head", "head_tail")],
                title=f"Truncation at max_length {base.max_length} (same reviews, seed, "
                      f"{base.epochs} epochs)")
    return res


def bench_cache_size(cache_dir: Path, keys, mean_tokens_hw: float | None) -> dict:
    entries = []
    hidden = 0
    for key in keys:
        man = cache_dir / "states" / key / "manifest.json"
        m = json.loads(man.read_text())
        hidden = m["hidden_size"]
        size = sum(f.stat().st_size for f in man.parent.iterdir())
        entries.append({"split": m.get("split"), "n_reviews": m["n_reviews"],
                        "n_tokens": m["n_tokens"], "bytes": size,
                        "mb_per_1000_reviews": size / m["n_reviews"] * 1000 / 1e6,
                        "tokens_per_review": m["n_tokens"] / m["n_reviews"]})
    n = sum(e["n_reviews"] for e in entries)
    b = sum(e["bytes"] for e in entries)
    res = {"entries": entries, "mb_per_1000_reviews": b / max(n, 1) * 1000 / 1e6,
           "bytes_per_token": b / max(sum(e["n_tokens"] for e in entries), 1)}
    rows = [[e["split"], e["n_reviews"], f"{e['tokens_per_review']:.0f}",
             f"{e['bytes'] / 1e6:.1f}", f"{e['mb_per_1000_reviews']:.1f}"] for e in entries]
    if mean_tokens_hw:
        est = mean_tokens_hw * (hidden * 2) * 1000 / 1e6
        res["estimated_mb_per_1000_reviews_at_homework_length"] = est
        res["estimated_gb_full_imdb_at_homework_length"] = est * 50 / 1e3
        rows.append([f"est. at max_length {default('max_length')} (head)", 1000,
                     f"{mean_tokens_hw:.0f}", "", f"{est:.1f}"])
    print_table(["state cache entry", "reviews", "tokens/review", "MB", "MB per 1,000 reviews"],
                rows, title=f"Encoder-state cache on disk (float16, hidden {hidden})")
    return res
