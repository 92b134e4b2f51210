"""The performance benchmark: homework-style loop vs ours, in one process, on the same reviews.

Sections (each prints a table; everything lands in one JSON file):
  tokenize   slow per-review tokenizer (tokenize + convert_tokens_to_ids) vs batched encode_texts
  encoder    frozen-encoder tokens/s for each precision (fp32, bf16 autocast, int8 dynamic)
  train      2-epoch training: homework-style (encoder on every batch, random batches, fp32)
             vs ours with a cold state cache vs ours re-run with the warm cache; test accuracy
  predict    SentimentModel.predict_proba (the registered-model path): per-review fp32 unsorted
             (the homework's predict_sentiment in a loop) vs batched length-sorted, default
             precision; plus batched fp32 / bf16 / int8, each with its test accuracy
  truncation head-only vs head+tail truncation at the same max_length (test accuracy)
  cache      state-cache disk size per 1,000 reviews

    python benchmarks/bench.py --size quick              # ~5 min on 2 CPU cores
    python benchmarks/bench.py --size full --device cuda # the GPU figure
"""

from __future__ import annotations

import os

# On shared or oversubscribed cores, OpenMP's default spin-waiting makes the GRU head's
# thousands of small parallel ops 5-10x slower; passive waiting costs little otherwise.
# It must be set before torch (libgomp) loads. Export OMP_WAIT_POLICY=ACTIVE to compare.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, print_table, write_json  # noqa: E402

from sentiment import data as data_mod  # noqa: E402
from sentiment import encoders, state_cache  # noqa: E402
from sentiment.batching import length_sorted_batches, pad_ids  # noqa: E402
from sentiment.config import Config  # noqa: E402
from sentiment.predict import SentimentModel  # noqa: E402
from sentiment.tokenization import encode_texts  # noqa: E402
from sentiment.training import TrainHooks, train  # noqa: E402
from sentiment.utils import select_device, set_threads  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = {
    # For the smoke test: seconds, with encoder=random-tiny.
    "tiny": dict(max_train=48, max_valid=16, max_test=32, max_length=64, batch_size=16),
    # `make bench-quick`: about 5 minutes on 2 CPU cores.
    "quick": dict(max_train=1000, max_valid=300, max_test=500, max_length=256, batch_size=32),
    # `make bench`: the library's quick-preset sizes (tens of minutes on 2 CPU cores).
    "full": dict(max_train=4000, max_valid=1000, max_test=2000, max_length=256, batch_size=32),
}
SECTIONS = ("tokenize", "encoder", "train", "predict", "truncation", "cache")
DEFAULT_SECTIONS = {"tiny": SECTIONS, "quick": ("tokenize", "encoder", "train", "predict", "cache"),
                    "full": SECTIONS}


def default_data() -> str:
    p = Path(os.environ.get("IMDB_DATA", REPO.parent / "shared" / "data" / "imdb"))
    return str(p) if p.exists() else Config().data


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------
# tokenize
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------

def precisions_for(device) -> list[str]:
    return ["fp32", "bf16", "int8"] if device.type == "cpu" else ["fp32", "bf16"]


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


# ---------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------

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
    hw = base.replace(cache_states=False, bucket_batches=False, encoder_precision="fp32",
                      cache_dir=str(work / "cache-homework"), run_dir=str(work / "run-homework"))
    ours = base.replace(cache_dir=str(work / "cache-ours"), run_dir=str(work / "run-ours"))
    warm = ours.replace(run_dir=str(work / "run-ours-warm"))
    r_hw = run_train(hw, splits, "homework-style: encoder every batch, random batches, fp32")
    r_cold = run_train(ours, splits, "ours, cold cache: cache + bucketing + auto precision")
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
    print_table(["variant", "prec", "tokenize s", "encode s", "2 epochs s", "training s",
                 "test s", "train speedup", "incl. test", "test acc %"], rows,
                title=f"2-epoch training on the same {len(splits.train)}/{len(splits.valid)}/"
                      f"{len(splits.test)} reviews, seed {base.seed}, batch {base.batch_size}, "
                      f"max_length {base.max_length} ({base.truncation}); training s = tokenize + "
                      f"encode + 2 epochs. cache-hit speedup: {res['cache_hit_speedup']:.2f}x")
    return res


# ---------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------

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
        probs, s = timed(lambda: models[p].predict_proba(texts))
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


# ---------------------------------------------------------------------------------------
# truncation, cache size
# ---------------------------------------------------------------------------------------

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
                title=f"Truncation at max_length {base.max_length} (same reviews, seed, 2 epochs)")
    return res


def bench_cache_size(cache_dir: Path, keys, mean_tokens_512: float | None) -> dict:
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
    if mean_tokens_512:
        est = mean_tokens_512 * (hidden * 2) * 1000 / 1e6
        res["estimated_mb_per_1000_reviews_at_512"] = est
        res["estimated_gb_full_imdb_at_512"] = est * 50 / 1e3
        rows.append(["est. at max_length 512 (head)", 1000, f"{mean_tokens_512:.0f}", "",
                     f"{est:.1f}"])
    print_table(["state cache entry", "reviews", "tokens/review", "MB", "MB per 1,000 reviews"],
                rows, title=f"Encoder-state cache on disk (float16, hidden {hidden})")
    return res


# ---------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Homework-style vs ours: training, encoder, "
                                            "tokenization and prediction speed, in one process.")
    p.add_argument("--size", choices=sorted(SIZES), default="quick")
    p.add_argument("--sections", default=None,
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: per size)")
    p.add_argument("--data", default=None, help="IMDB source (default: $IMDB_DATA or "
                                                "../shared/data/imdb)")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--max-train", type=int)
    p.add_argument("--max-valid", type=int)
    p.add_argument("--max-test", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--truncation", choices=("head", "head_tail"), default="head_tail")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--work-dir", default=None, help="where caches and runs go (default: a fresh "
                                                    "temp dir, removed afterwards)")
    p.add_argument("--out", default="benchmarks/results/latest.json")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    a = parse_args(argv)
    sections = tuple(a.sections.split(",")) if a.sections else DEFAULT_SECTIONS[a.size]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    size = dict(SIZES[a.size])
    for k in ("max_train", "max_valid", "max_test", "max_length", "batch_size"):
        if getattr(a, k) is not None:
            size[k] = getattr(a, k)
    base = Config.from_preset("homework", data=a.data or default_data(), encoder=a.encoder,
                              device=a.device, num_threads=a.num_threads, epochs=a.epochs,
                              seed=a.seed, truncation=a.truncation, progress=False, min_rows=1,
                              **size)
    set_threads(base.num_threads)
    device = select_device(base.device)
    t_start = time.perf_counter()
    out: dict = {"size": a.size, "sections": list(sections), "device": str(device),
                 "machine": machine_info(device), "config": base.to_dict(),
                 "loadavg_start": loadavg()}
    print(f"benchmark size={a.size} device={device} threads={torch.get_num_threads()} "
          f"encoder={base.encoder} data={base.data}")
    splits = data_mod.load_splits(base)
    out["split_sizes"] = splits.sizes()
    encoder, tokenizer, _ = encoders.load_encoder(base.encoder)
    encoder.to(device)
    work = Path(a.work_dir) if a.work_dir else Path(tempfile.mkdtemp(prefix="sentiment-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if "tokenize" in sections:
            out["tokenize"] = bench_tokenize(tokenizer, splits.train["text"].tolist(), 512)
        if "encoder" in sections:
            n = min(len(splits.test), max(64, len(splits.test) // 4))
            ids = encode_texts(tokenizer, splits.test["text"].tolist()[:n], base.max_length,
                               base.truncation)
            out["encoder"] = bench_encoder(encoder, tokenizer, ids, device)
        del encoder
        if "train" in sections or "predict" in sections or "cache" in sections:
            out["train"] = bench_train(base, splits, work)
            out["train_speedup"] = out["train"]["train_speedup"]
            out["cache_hit_speedup"] = out["train"]["cache_hit_speedup"]
            out["homework_test_accuracy"] = out["train"]["homework"]["test_accuracy"]
            out["ours_test_accuracy"] = out["train"]["ours_cold"]["test_accuracy"]
            out["ours_warm_test_accuracy"] = out["train"]["ours_warm"]["test_accuracy"]
        if "predict" in sections:
            out["predict"] = bench_predict(out["train"]["ours_cold"]["run_dir"],
                                           splits.test["text"].tolist(),
                                           splits.test["label"].to_numpy(), device,
                                           batch_size=64)
            for k in ("predict_speedup", "predict_accuracy", "predict_baseline_accuracy"):
                out[k] = out["predict"][k]
        if "truncation" in sections:
            done = dict(out["train"]["ours_cold"], config={"truncation": base.truncation})
            out["truncation"] = bench_truncation(base, splits, work, done)
        if "cache" in sections:
            mean512 = out.get("tokenize", {}).get("mean_tokens")
            keys = [v["key"] for v in out["train"]["ours_cold"]["state_cache"].values()]
            out["cache"] = bench_cache_size(work / "cache-ours", keys, mean512)
            out["cache_mb_per_1000_reviews"] = out["cache"]["mb_per_1000_reviews"]
    finally:
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    out["loadavg_end"] = loadavg()
    out["seconds"] = time.perf_counter() - t_start
    summary = [[k, f"{out[k]:.2f}x" if "speedup" in k else f"{out[k] * 100:.2f}"]
               for k in ("train_speedup", "homework_test_accuracy", "ours_test_accuracy",
                         "cache_hit_speedup", "ours_warm_test_accuracy", "predict_speedup",
                         "predict_baseline_accuracy", "predict_accuracy") if k in out]
    if summary:
        print_table(["headline", "value"], summary,
                    title=f"Summary ({out['seconds']:.0f} s, load average "
                          f"{out['loadavg_start']} -> {out['loadavg_end']})")
    write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
