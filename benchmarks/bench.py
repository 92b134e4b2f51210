"""The performance benchmark: homework-style loop vs ours, in one process, on the same reviews.

Sections (each prints a table; everything lands in one JSON file):
  tokenize   slow per-review tokenizer (tokenize + convert_tokens_to_ids) vs batched encode_texts
  encoder    frozen-encoder tokens/s for each precision (fp32, bf16 autocast, int8 dynamic)
  finetune   tokens/s of a fine-tuning step of the trained encoder (forward, backward, AdamW)
             vs its inference on the same full batches: `finetune_vs_inference`
  train      homework-style (the frozen encoder on every batch, length-bucketed batches as
             torchtext's BucketIterator made them, fp32, the frozen head's recipe) vs ours (the
             preset as the library trains it) with a cold cache vs ours re-run with the warm
             cache; test accuracy of each
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
import dataclasses
import shutil
import sys
import tempfile
import time
import typing
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import loadavg, machine_info, print_table, write_json  # noqa: E402
from encoding_speed import bench_encoder, bench_tokenize  # noqa: E402
from finetune_speed import bench_finetune  # noqa: E402
from prediction_speed import bench_predict  # noqa: E402
from training_runs import bench_cache_size, bench_train, bench_truncation  # noqa: E402

from sentiment.common.compute import resolve_encoder_precision, select_device, set_threads  # noqa: E402
from sentiment.config import Config, default  # noqa: E402
from sentiment.data import imdb as data_mod  # noqa: E402
from sentiment.encoding import encoders  # noqa: E402
from sentiment.encoding.tokenization import encode_texts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# A size is a library preset, at most with smaller subsets; every other value is the preset's.
SIZES = {
    "tiny": ("smoke", {}),  # the smoke test: seconds, with --encoder random-tiny
    "quick": ("quick", dict(max_train=1000, max_valid=300, max_test=500)),  # make bench-quick
    "full": ("quick", {}),  # make bench: the quick preset as the library runs it
}
# Config fields the command line may override (unset: the size's preset decides).
CONFIG_ARGS = ("data", "encoder", "device", "num_threads", "max_train", "max_valid", "max_test",
               "max_length", "truncation", "epochs", "batch_size", "eval_batch_size", "seed",
               "train_encoder_layers", "encoder_lr", "encoder_attention_dropout")
SECTIONS = ("tokenize", "encoder", "finetune", "train", "predict", "truncation", "cache")
DEFAULT_SECTIONS = {"tiny": SECTIONS,
                    "quick": ("tokenize", "encoder", "finetune", "train", "predict", "cache"),
                    "full": SECTIONS}


def default_data() -> str:
    p = Path(os.environ.get("IMDB_DATA", REPO.parent / "shared" / "data" / "imdb"))
    return str(p) if p.exists() else default("data")


def add_config_args(p: argparse.ArgumentParser) -> None:
    """One --flag per CONFIG_ARGS field, typed and described as Config declares it."""
    hints = typing.get_type_hints(Config)
    group = p.add_argument_group(
        "config", "Unset: the size's preset decides; --data: $IMDB_DATA, else ../shared/data/imdb "
                  "when it exists, else the preset's.")
    for f in dataclasses.fields(Config):
        if f.name not in CONFIG_ARGS:
            continue
        t = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
        kw = dict(dest=f.name, default=None, help=f.metadata["help"])
        if t[0] is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw.update(type=t[0], choices=f.metadata.get("choices"), metavar=f.name.upper())
        group.add_argument("--" + f.name.replace("_", "-"), **kw)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Homework-style vs ours: training, encoder, "
                                            "tokenization and prediction speed, in one process.")
    p.add_argument("--size", choices=sorted(SIZES), default="quick",
                   help="; ".join(f"{k}: preset {v[0]!r}{f' with {v[1]}' if v[1] else ''}"
                                  for k, v in SIZES.items()) + " (default: quick)")
    p.add_argument("--sections", default=None,
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: per size)")
    add_config_args(p)
    p.add_argument("--work-dir", default=None, help="where caches and runs go (default: a fresh "
                                                    "temp dir, removed afterwards)")
    p.add_argument("--out", default="benchmarks/results/latest.json")
    return p.parse_args(argv)


def config_for(a) -> Config:
    """The size's preset, its subsets, then the command line; data defaults to the local copy."""
    preset, subsets = SIZES[a.size]
    given = {k: getattr(a, k) for k in CONFIG_ARGS if getattr(a, k) is not None}
    return Config.from_preset(preset, **{"data": default_data(), **subsets, **given,
                                         "progress": False})


def main(argv=None) -> dict:
    a = parse_args(argv)
    sections = tuple(a.sections.split(",")) if a.sections else DEFAULT_SECTIONS[a.size]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    base = config_for(a)
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
            # At the homework's length, where per-review tokenization costs the most.
            out["tokenize"] = bench_tokenize(tokenizer, splits.train["text"].tolist(),
                                             default("max_length"))
        if "encoder" in sections:
            n = min(len(splits.test), max(64, len(splits.test) // 4))
            ids = encode_texts(tokenizer, splits.test["text"].tolist()[:n], base.max_length,
                               base.truncation)
            out["encoder"] = bench_encoder(encoder, tokenizer, ids, device)
        del encoder
        if "finetune" in sections:
            ids = encode_texts(tokenizer, splits.test["text"].tolist(), base.max_length,
                               base.truncation)
            # fp32 on CPUs without native bf16 (emulated bf16 is several times slower there).
            prec = resolve_encoder_precision(base.encoder_precision, device)
            out["finetune"] = bench_finetune(base, ids, device, prec)
            out["finetune_vs_inference"] = out["finetune"]["finetune_vs_inference"]
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
                                           batch_size=base.eval_batch_size)
            for k in ("predict_speedup", "predict_accuracy", "predict_baseline_accuracy"):
                out[k] = out["predict"][k]
        if "truncation" in sections:
            done = dict(out["train"]["ours_cold"], config={"truncation": base.truncation})
            out["truncation"] = bench_truncation(base, splits, work, done)
        if "cache" in sections:
            mean_hw = out.get("tokenize", {}).get("mean_tokens")
            keys = [v["key"] for v in out["train"]["ours_cold"]["state_cache"].values()]
            out["cache"] = bench_cache_size(work / "cache-ours", keys, mean_hw)
            out["cache_mb_per_1000_reviews"] = out["cache"]["mb_per_1000_reviews"]
    finally:
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    out["loadavg_end"] = loadavg()
    out["seconds"] = time.perf_counter() - t_start
    summary = [[k, f"{out[k]:.2f}x" if "speedup" in k or "_vs_" in k else f"{out[k] * 100:.2f}"]
               for k in ("finetune_vs_inference", "train_speedup", "homework_test_accuracy",
                         "ours_test_accuracy",
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
