"""A head sweep: heads of every kind trained on ONE pass of the frozen encoder (the state
cache), each trial a Config that differs in its head and optimisation settings.

The library knows no MLflow: ``sentiment.tracking.sweep_run`` puts each trial in a nested run.
Optuna (the ``pipeline`` extra) proposes the trials (``suggest``); ``train_trial`` trains one
and saves it as an ordinary model folder, so the best one can be registered and gated like any
trained run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from sentiment.common.files import atomic_write_text
from sentiment.encoding import preprocessing
from sentiment.model import model_folder
from sentiment.model.bert_gru import count_parameters
from sentiment.model.model_folder import MODEL_DIR
from sentiment.training.checkpoints import BEST
from sentiment.training.outputs import METRICS

# What the search may choose, per head (the names Optuna stores carry the head: one
# distribution per name). Sizes stay small enough for a CPU sweep on cached states.
LR_RANGE = (3e-4, 3e-3)
DROPOUT_RANGE = (0.0, 0.5)
HIDDEN_DIMS = (32, 64, 128)
GRU_LAYERS = (1, 2)
CNN_WIDTHS = ("2,3,4", "3,4,5", "3,5,7")
ATTENTION_HEAD_COUNTS = (2, 4)
LINFORMER_KS = (16, 32, 64)
# The comparison table's columns, in order (the parent run's table and benchmarks/README.md).
COLUMNS = ("trial", "head", "val_accuracy", "test_accuracy", "train_seconds",
           "train_tokens_per_s", "inference_reviews_per_s", "parameters", "params")


def sweep_config(cfg):
    """What every trial shares: the frozen encoder's cached states, no blend; the rest of
    `cfg` (data, preprocessing, epochs, batch size) as given."""
    return cfg.replace(train_encoder_layers=0, cache_states=True, blend=False, resume=False)


def suggest(trial, heads: list[str]) -> dict:
    """Config overrides for one trial: a head and its sizes, the learning rate, dropout."""
    head = trial.suggest_categorical("head", heads)
    p = {"head": head, "lr": trial.suggest_float("lr", *LR_RANGE, log=True),
         "dropout": trial.suggest_float("dropout", *DROPOUT_RANGE)}
    p["hidden_dim"] = trial.suggest_categorical(f"{head}.hidden_dim", HIDDEN_DIMS)
    if head == "gru":
        p["n_layers"] = trial.suggest_categorical("gru.n_layers", GRU_LAYERS)
    elif head == "cnn":
        p["cnn_widths"] = trial.suggest_categorical("cnn.widths", CNN_WIDTHS)
    else:
        p["attention_heads"] = trial.suggest_categorical(f"{head}.attention_heads",
                                                         ATTENTION_HEAD_COUNTS)
        if head == "linformer":
            p["linformer_k"] = trial.suggest_categorical("linformer.k", LINFORMER_KS)
    return p


def parse_heads(text: str) -> list[str]:
    return [h.strip() for h in text.split(",") if h.strip()]


def train_trial(cfg, prep, report=lambda _msg: None) -> dict:
    """Train `cfg`'s head on the prepared (cached) features, test its best epoch and save the
    model folder in ``cfg.run_dir``. Returns what the comparison table shows, and the run's
    summary is written to ``cfg.run_dir/metrics.json`` as a training run writes it."""
    from sentiment.evaluation.metrics import classification_metrics
    from sentiment.training.loop import TrainHooks, eval_batches, fit, run_epoch
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    res = fit(cfg, prep, TrainHooks(report=report))
    train_s = time.perf_counter() - t
    model = res["model"]
    model_folder.load_trained(run_dir / BEST, model)
    test_f = prep.features["test"]
    t = time.perf_counter()
    te = run_epoch(model, test_f, eval_batches(test_f.lengths, cfg), nn.BCEWithLogitsLoss(),
                   prep.device)
    infer_s = time.perf_counter() - t
    test = classification_metrics(test_f.labels, te["probs"])
    hist = res["history"]
    best = hist[res["best_epoch"] - 1]
    result = {
        "head": cfg.head, "val_accuracy": best["val_acc"], "val_loss": best["val_loss"],
        "test_accuracy": test["accuracy"], "train_seconds": train_s,
        "train_tokens_per_s": sum(h["train_tokens_per_s"] for h in hist) / len(hist),
        "inference_reviews_per_s": len(test_f.labels) / max(infer_s, 1e-9),
        "parameters": count_parameters(model.head)["total"], "best_epoch": res["best_epoch"],
    }
    model_folder.save(model.head.cpu(), run_dir / MODEL_DIR, preprocessing.from_config(cfg))
    summary = {"run_dir": str(run_dir), "model_dir": str(run_dir / MODEL_DIR),
               "device": str(prep.device), "encoder_precision": prep.precision,
               "split_sizes": prep.splits.sizes(), "data_fingerprint": prep.splits.fingerprint,
               "best_epoch": res["best_epoch"], "best_val_loss": res["best_val_loss"],
               "history": hist, "test": test, "test_loss": te["loss"], "sweep": result,
               "config": cfg.to_dict()}
    atomic_write_text(run_dir / METRICS, json.dumps(summary, indent=2))
    torch.manual_seed(cfg.seed)  # the next trial starts from the same RNG state as this one
    return result


def markdown_table(rows: list[dict]) -> str:
    """The comparison table, best validation accuracy first."""
    lines = ["| trial | head | val acc | test acc | train s | train tokens/s | "
             "inference reviews/s | parameters | settings |", "|" + "---|" * 9]
    for r in sorted(rows, key=lambda r: -r["val_accuracy"]):
        lines.append(f"| {r['trial']} | {r['head']} | {r['val_accuracy']:.2%} | "
                     f"{r['test_accuracy']:.2%} | {r['train_seconds']:.1f} | "
                     f"{r['train_tokens_per_s']:,.0f} | {r['inference_reviews_per_s']:,.0f} | "
                     f"{r['parameters']:,} | {r['params']} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str | Path) -> Path:
    """Validation accuracy against training tokens/s, one colour per head."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for head in sorted({r["head"] for r in rows}):
        mine = [r for r in rows if r["head"] == head]
        ax.scatter([r["train_tokens_per_s"] for r in mine],
                   [100 * r["val_accuracy"] for r in mine], label=head, s=40)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens/s (head on cached states)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Head sweep: accuracy against training speed")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
