"""Where a trained model's inference time goes, and what the head's precision buys.

    python benchmarks/inference_speed.py RUN_DIR [--reviews 1000] [--batch-size 64] [--out F]

RUN_DIR is a saved model folder (not a blended model's bag-of-words part: that one is
seconds) or a run folder holding one (`runs/<preset>/latest`). On the
first N test reviews of the model's own data settings, one process runs, interleaved:
  fp32/fp32  encoder and head in fp32 (the reference for agreement)
  bf16/fp32  encoder under bf16 autocast, fp32 GRU head (what inference did before)
  bf16/bf16  the same with the head's bf16 copy (model/inference_head.py: what it does now
             on CPUs with native bf16)
each split into tokenization, encoder and head seconds, with reviews/s, test accuracy and the
share of labels identical to fp32's. bf16 variants need a CPU with AVX-512 BF16 or AMX to be
fast (elsewhere bf16 is emulated and slow, and `auto` picks fp32 anyway).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import loadavg, machine_info, print_table, write_json  # noqa: E402

from sentiment.common.compute import encoder_autocast  # noqa: E402
from sentiment.config import Config  # noqa: E402
from sentiment.data.batching import length_sorted_batches, pad_ids  # noqa: E402
from sentiment.data.imdb import load_splits  # noqa: E402
from sentiment.model.inference_head import inference_head  # noqa: E402
from sentiment.model.predict import SentimentModel  # noqa: E402

VARIANTS = (("fp32", "fp32"), ("bf16", "fp32"), ("bf16", "bf16"))


def run_variant(m: SentimentModel, texts, enc_prec: str, head_prec: str, batch_size: int) -> dict:
    device = m.device
    t0 = time.perf_counter()
    ids = m.preprocessing.encode(m.tokenizer, texts)
    tok_s = time.perf_counter() - t0
    head = inference_head(m.model.head, head_prec, device)
    lengths = np.array([len(x) for x in ids])
    probs = np.zeros(len(texts), dtype=np.float32)
    enc_s = head_s = 0.0
    with torch.inference_mode():
        for idx in length_sorted_batches(lengths, batch_size=batch_size):
            batch, mask = pad_ids([ids[i] for i in idx], m.tokenizer.pad_token_id)
            t = time.perf_counter()
            with encoder_autocast(device, enc_prec):
                states = m.model.bert(input_ids=batch, attention_mask=mask)[0]
            t2 = time.perf_counter()
            logits = head(states.float(), mask.sum(1))
            head_s += time.perf_counter() - t2
            enc_s += t2 - t
            probs[idx] = torch.sigmoid(logits[:, 0].float()).numpy()
    return {"probs": probs, "tokenize_s": tok_s, "encoder_s": enc_s, "head_s": head_s,
            "seconds": tok_s + enc_s + head_s, "tokens": int(lengths.sum())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--reviews", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=1, help="passes over the variants (interleaved)")
    ap.add_argument("--data", default="../shared/data/imdb", help="IMDB source")
    ap.add_argument("--out", default="benchmarks/results/inference_speed.json")
    a = ap.parse_args(argv)
    m = SentimentModel.load(a.run_dir, device="cpu", precision="fp32", batch_size=a.batch_size)
    splits = load_splits(Config.from_preset("full", data=a.data))
    # A random sample: the test files are ordered by label.
    test = splits.test.sample(n=min(a.reviews, len(splits.test)), random_state=0)
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    run_variant(m, texts[:8], "fp32", "fp32", a.batch_size)  # warm-up
    res: dict = {}
    for _ in range(a.reps):
        for enc_p, head_p in VARIANTS:
            r = run_variant(m, texts, enc_p, head_p, a.batch_size)
            best = res.get((enc_p, head_p))
            if best is None or r["seconds"] < best["seconds"]:
                res[(enc_p, head_p)] = r
    ref = res[("fp32", "fp32")]["probs"] >= 0.5
    rows, out = [], {"machine": machine_info(torch.device("cpu")), "loadavg": loadavg(),
                     "reviews": len(texts), "batch_size": a.batch_size, "variants": {}}
    base_s = res[("bf16", "fp32")]["seconds"]
    for (enc_p, head_p), r in res.items():
        label = r["probs"] >= 0.5
        row = {k: r[k] for k in ("tokenize_s", "encoder_s", "head_s", "seconds", "tokens")}
        row.update(reviews_per_s=len(texts) / r["seconds"],
                   accuracy=float((label == labels).mean()),
                   agreement_with_fp32=float((label == ref).mean()),
                   max_abs_prob_diff=float(np.abs(r["probs"] - res[("fp32", "fp32")]["probs"]).max()))
        out["variants"][f"{enc_p}/{head_p}"] = row
        rows.append([f"encoder {enc_p}, head {head_p}", f"{row['tokenize_s']:.1f}",
                     f"{row['encoder_s']:.1f}", f"{row['head_s']:.1f}",
                     f"{row['reviews_per_s']:.1f}", f"{base_s / r['seconds']:.2f}x",
                     f"{row['accuracy'] * 100:.2f}", f"{row['agreement_with_fp32'] * 100:.2f}",
                     f"{row['max_abs_prob_diff']:.4f}"])
    print_table(["variant", "tokenize s", "encoder s", "head s", "reviews/s", "vs before",
                 "acc %", "same label as fp32 %", "max |dp|"], rows,
                title=f"{len(texts)} test reviews, batch {a.batch_size}, {a.run_dir}, "
                      f"load average {out['loadavg']}")
    write_json(a.out, out)
    return out


if __name__ == "__main__":
    main()
