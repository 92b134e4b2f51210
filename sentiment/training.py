"""The homework's training loop, done well: bucketed batches, best-by-validation-loss checkpoint,
atomic per-epoch checkpoints with optimizer and RNG state, resume, test evaluation.

``train(cfg)`` is the whole stage; it needs torch and transformers only (``datasets`` is used for
the tokenization cache when installed).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from . import data as data_mod
from . import encoders, state_cache, tokenization
from .batching import bucketed_batches, length_sorted_batches, pad_ids, random_batches
from .model import BERTGRUSentiment, GRUHead, count_parameters, load_weights, save_head, save_weights
from .utils import (atomic_path, atomic_write_text, resolve_encoder_precision, seed_everything,
                    select_device, set_threads)

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/last.safetensors"
BEST = "checkpoints/best.safetensors"
MODEL_DIR = "model"
METRICS = "metrics.json"
TEST_PREDICTIONS = "test_predictions.parquet"


class ResumeError(RuntimeError):
    """A checkpoint cannot be resumed under the given config."""


@dataclass
class TrainHooks:
    """Callbacks the tracking layer attaches; the library itself knows nothing of MLflow."""
    on_step: Optional[Callable[[int, dict], None]] = None    # global step, {loss, acc}
    on_epoch: Optional[Callable[[int, dict], None]] = None   # epoch (1-based), epoch metrics
    stop_after_epoch: Optional[int] = None                   # simulate an interruption (tests)
    report: Callable[[str], None] = print


# ---------------------------------------------------------------------------------------
# Features: what a batch is made of (cached encoder states, or token ids through the encoder)
# ---------------------------------------------------------------------------------------

class CachedFeatures:
    def __init__(self, store, labels, device):
        self.store, self.labels, self.device = store, labels, device
        self.lengths = store.lengths

    def logits(self, model: BERTGRUSentiment, idx, head_ctx) -> torch.Tensor:
        states, lengths = self.store.batch(idx)
        with head_ctx():
            return head_forward(model.head, states.to(self.device, non_blocking=True), lengths)


class TokenFeatures:
    def __init__(self, tokens, labels, device, pad_id, precision):
        self.tokens, self.labels, self.device = tokens, labels, device
        self.pad_id, self.precision = pad_id, precision
        self.lengths = tokens.lengths

    def logits(self, model: BERTGRUSentiment, idx, head_ctx) -> torch.Tensor:
        ids, mask = pad_ids([self.tokens.input_ids[i] for i in idx], self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.no_grad(), state_cache.encoder_autocast(self.device, self.precision):
            emb = model.encode(ids, mask)
        with head_ctx():
            return head_forward(model.head, emb.to(model.head.out.weight.dtype), mask.sum(1))


def head_forward(head: GRUHead, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``head(states, lengths)``; when training on the CPU, computed without packed sequences.

    Backpropagating through a packed GRU is slow on the CPU (a shrinking batch at every time
    step); this gives the same logits and gradients ~2x faster (benchmarks/head_speed.py).
    """
    if torch.is_grad_enabled() and states.device.type == "cpu" and states.dtype == torch.float32:
        return unpacked_head_forward(head, states, lengths)
    return head(states, lengths)


def unpacked_head_forward(head: GRUHead, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """GRUHead's forward, exact, on the right-padded batch: per layer, a forward scan and a
    forward scan over each review reversed in place (its real tokens only) stand in for the
    packed bidirectional GRU. Padding then only trails each scan's real tokens, so it never
    reaches them; the final hidden states are the scans' outputs at each review's last token.
    Same parameters (the nn.GRU's own); dropout between layers as nn.GRU applies it."""
    rnn = head.rnn
    B, T, _ = states.shape
    L = lengths.to(states.device).view(B, 1)
    t = torch.arange(T, device=states.device).view(1, T)
    rev = torch.where(t < L, L - 1 - t, t).unsqueeze(2)    # reverses the real part of each row
    last = (L - 1).view(B, 1, 1).expand(-1, 1, rnn.hidden_size)
    dirs = (("", False), ("_reverse", True)) if rnn.bidirectional else (("", False),)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if rnn.bias else ("weight_ih", "weight_hh")
    x, finals = states, []
    for layer in range(rnn.num_layers):
        outs = []
        for suffix, backward in dirs:
            w = [getattr(rnn, f"{n}_l{layer}{suffix}") for n in names]
            inp = x.gather(1, rev.expand(-1, -1, x.shape[2])) if backward else x
            out, _ = torch._VF.gru(inp, x.new_zeros(1, B, rnn.hidden_size), w, rnn.bias, 1, 0.0,
                                   rnn.training, False, True)
            if layer == rnn.num_layers - 1:
                finals.append(out.gather(1, last).squeeze(1))
            outs.append(out.gather(1, rev.expand(-1, -1, rnn.hidden_size)) if backward else out)
        x = torch.cat(outs, dim=2)
        if layer < rnn.num_layers - 1 and rnn.dropout > 0:
            x = nn.functional.dropout(x, rnn.dropout, rnn.training)
    return head.out(head.dropout(torch.cat(finals, dim=1)))


def head_autocast(device: torch.device):
    # bf16 autocast makes nn.GRU ~8x slower on CPU; cuDNN runs it fast in bf16.
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


# ---------------------------------------------------------------------------------------
# One pass over a split
# ---------------------------------------------------------------------------------------

def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (torch.round(torch.sigmoid(logits)) == y).float().mean().item()


def run_epoch(model, feats, batches, criterion, device, optimizer=None, hooks=None, step0=0,
              progress=False, desc="") -> dict:
    training = optimizer is not None
    model.train(training)
    ctx = head_autocast(device)
    total_loss = total_correct = n = tokens = 0
    probs = np.zeros(len(feats.labels), dtype=np.float32)
    it = batches
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(batches, desc=desc, unit="batch", leave=False)
    t0 = time.perf_counter()
    for step, idx in enumerate(it, start=1):
        y = torch.as_tensor(feats.labels[idx], dtype=torch.float32, device=device)
        with torch.set_grad_enabled(training):
            logits = feats.logits(model, idx, ctx).squeeze(1).float()
            loss = criterion(logits, y)
        if training:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        b = len(idx)
        acc = binary_accuracy(logits.detach(), y)
        total_loss += loss.item() * b
        total_correct += acc * b
        n += b
        tokens += int(feats.lengths[idx].sum())
        probs[idx] = torch.sigmoid(logits.detach()).cpu().numpy()
        if training and hooks and hooks.on_step:
            hooks.on_step(step0 + step, {"train_loss": loss.item(), "train_acc": acc})
        if progress:
            it.set_postfix(loss=f"{total_loss / n:.4f}", acc=f"{total_correct / n:.2%}")
    seconds = time.perf_counter() - t0
    return {"loss": total_loss / max(n, 1), "acc": total_correct / max(n, 1), "seconds": seconds,
            "tokens_per_s": tokens / max(seconds, 1e-9), "steps": len(batches), "probs": probs}


def eval_batches(lengths, cfg) -> list:
    return length_sorted_batches(lengths, batch_size=cfg.eval_batch_size)


# ---------------------------------------------------------------------------------------
# Checkpoints: one safetensors file holding weights, optimizer and RNG state, atomically replaced
# ---------------------------------------------------------------------------------------

def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt, tensors: dict, meta: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: Path, head: GRUHead, opt, state: dict) -> None:
    from safetensors.torch import save_file
    tensors = {f"head.{k}": v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    opt_t, opt_meta = _optimizer_tensors(opt)
    tensors.update(opt_t)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"state": json.dumps(state), "optimizer": json.dumps(opt_meta)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def checkpoint_state(path: Path) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["state"])


def load_checkpoint(path: Path, head: GRUHead, opt, device) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    head.to(device)
    _restore_optimizer(opt, {k: v.to(device) if not k.endswith(".step") else v
                             for k, v in tensors.items()}, json.loads(meta["optimizer"]))
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return json.loads(meta["state"])


# Fields that change what a resumed run computes; anything else (paths, progress) may differ.
RESUME_KEYS = ("data", "split_seed", "train_fraction", "max_train", "max_valid", "max_test",
               "encoder", "encoder_revision", "max_length", "truncation", "hidden_dim",
               "output_dim", "n_layers", "bidirectional", "dropout", "batch_size", "bucket_batches", "lr", "seed",
               "cache_states", "encoder_precision")


# ---------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------

@dataclass
class Prepared:
    """Everything `train` needs besides the loop: built once, reusable by benchmarks."""
    cfg: object
    device: torch.device
    precision: str
    encoder: nn.Module
    tokenizer: object
    spec: object
    splits: object
    tokens: dict
    features: dict
    timings: dict = field(default_factory=dict)
    cache_info: dict = field(default_factory=dict)


def prepare(cfg, splits=None) -> Prepared:
    timings: dict = {}
    set_threads(cfg.num_threads)
    device = select_device(cfg.device)
    precision = resolve_encoder_precision(cfg.encoder_precision, device)
    t = time.perf_counter()
    if splits is None:
        splits = data_mod.load_splits(cfg)
    timings["load_data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    encoder, tokenizer, spec = encoders.load_encoder(cfg.encoder, cfg.encoder_revision)
    timings["load_encoder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    frames = dict(splits.items())
    tokens = tokenization.tokenize_splits(frames, tokenizer, cfg)
    timings["tokenize_s"] = time.perf_counter() - t
    encoder.to(device)
    run_encoder = encoder
    if precision == "int8":
        run_encoder = torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    features, cache_info = {}, {}
    t = time.perf_counter()
    labels = {name: df["label"].to_numpy(np.int64) for name, df in frames.items()}
    if cfg.cache_states:
        enc_id = encoders.encoder_identity(encoder, spec)
        for name, tok in tokens.items():
            store, info = state_cache.get_or_build(
                run_encoder, tok, encoder_id=enc_id, cache_dir=cfg.cache_dir, device=device,
                precision=precision,
                pad_id=tokenizer.pad_token_id, progress=cfg.progress, name=name,
                meta={"encoder": cfg.encoder, "split": name})
            cache_info[name] = info
            features[name] = CachedFeatures(store, labels[name], device)
    else:
        for name, tok in tokens.items():
            features[name] = TokenFeatures(tok, labels[name], device, tokenizer.pad_token_id, precision)
    timings["encode_s"] = time.perf_counter() - t
    return Prepared(cfg, device, precision, run_encoder, tokenizer, spec, splits, tokens,
                    features, timings, cache_info)


def build_model(cfg, encoder) -> BERTGRUSentiment:
    torch.manual_seed(cfg.seed)
    model = BERTGRUSentiment(encoder, cfg.hidden_dim, cfg.output_dim, cfg.n_layers,
                             cfg.bidirectional, cfg.dropout)
    # With the cache the encoder never runs in training, so its dropout cannot apply.
    model.encoder_dropout = not cfg.cache_states
    return model


def fit(cfg, prep: Prepared, hooks: TrainHooks | None = None) -> dict:
    """The epoch loop with checkpoints; returns the history and best epoch."""
    hooks = hooks or TrainHooks()
    run_dir = Path(cfg.run_dir)
    device = prep.device
    model = build_model(cfg, prep.encoder)
    model.head.to(device)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=cfg.lr)
    criterion = nn.BCEWithLogitsLoss()
    history: list = []
    best_val = math.inf
    best_epoch = 0
    start_epoch = 0
    ckpt = run_dir / CHECKPOINT
    if cfg.resume:
        if not ckpt.exists():
            raise ResumeError(f"--resume: no checkpoint at {ckpt}")
        saved = checkpoint_state(ckpt)["config"]
        changed = [k for k in RESUME_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed:
            raise ResumeError("--resume: the checkpoint was made with a different "
                              + ", ".join(f"{k} ({saved.get(k)!r} != {getattr(cfg, k)!r})" for k in changed))
        state = load_checkpoint(ckpt, model.head, optimizer, device)
        start_epoch, history = state["epoch"], state["history"]
        best_val, best_epoch = state["best_val_loss"], state["best_epoch"]
        hooks.report(f"Resuming from epoch {start_epoch} ({ckpt})")
    else:
        seed_everything(cfg.seed)
        torch.manual_seed(cfg.seed)
    train_f, valid_f = prep.features["train"], prep.features["valid"]
    step = sum(h["steps"] for h in history)
    for epoch in range(start_epoch, cfg.epochs):
        # Batch order depends only on (seed, epoch): a resumed run sees the same batches.
        rng = np.random.default_rng([cfg.seed, epoch])
        batches = (bucketed_batches(train_f.lengths, cfg.batch_size, rng) if cfg.bucket_batches
                   else random_batches(len(train_f.lengths), cfg.batch_size, rng))
        t0 = time.perf_counter()
        tr = run_epoch(model, train_f, batches, criterion, device, optimizer, hooks, step,
                       cfg.progress, f"epoch {epoch + 1} train")
        va = run_epoch(model, valid_f, eval_batches(valid_f.lengths, cfg), criterion, device,
                       progress=cfg.progress, desc=f"epoch {epoch + 1} valid")
        secs = time.perf_counter() - t0
        step += tr["steps"]
        rec = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_acc": tr["acc"],
               "val_loss": va["loss"], "val_acc": va["acc"], "epoch_seconds": secs,
               "train_tokens_per_s": tr["tokens_per_s"], "steps": tr["steps"]}
        history.append(rec)
        if va["loss"] < best_val:
            best_val, best_epoch = va["loss"], epoch + 1
            save_weights(run_dir / BEST, model.head)
        save_checkpoint(ckpt, model.head, optimizer,
                        {"epoch": epoch + 1, "history": history, "best_val_loss": best_val,
                         "best_epoch": best_epoch, "config": cfg.to_dict()})
        m, s = divmod(int(round(secs)), 60)
        hooks.report(f"Epoch: {epoch + 1:02} | Epoch Time: {m}m {s}s\n"
                     f"\tTrain Loss: {tr['loss']:.3f} | Train Acc: {tr['acc'] * 100:.2f}%\n"
                     f"\t Val. Loss: {va['loss']:.3f} |  Val. Acc: {va['acc'] * 100:.2f}%")
        if hooks.on_epoch:
            hooks.on_epoch(epoch + 1, rec)
        if hooks.stop_after_epoch is not None and epoch + 1 >= hooks.stop_after_epoch \
                and epoch + 1 < cfg.epochs:
            raise KeyboardInterrupt(f"stopped after epoch {epoch + 1} (stop_after_epoch)")
    return {"history": history, "best_epoch": best_epoch, "best_val_loss": best_val, "model": model}


def model_metadata(cfg, prep: Prepared) -> dict:
    """What a saved head needs to be rebuilt and fed exactly as in training."""
    return {"encoder": cfg.encoder, "encoder_revision": cfg.encoder_revision,
            "max_length": cfg.max_length, "truncation": cfg.truncation,
            "encoder_precision": prep.precision, "data_fingerprint": prep.splits.fingerprint}


def train(cfg, splits=None, hooks: TrainHooks | None = None) -> dict:
    """Prepare → fit → test the best checkpoint → save the model. Returns a small summary dict."""
    from .metrics import classification_metrics
    hooks = hooks or TrainHooks()
    run_dir = Path(cfg.run_dir)
    if not cfg.resume and (run_dir / CHECKPOINT).exists():
        hooks.report(f"Note: {run_dir} holds an earlier run's checkpoint; it is replaced "
                     "(use --resume to continue it)")
    t_all = time.perf_counter()
    prep = prepare(cfg, splits)
    timings = dict(prep.timings)
    params = count_parameters(build_model(cfg, prep.encoder))
    t = time.perf_counter()
    res = fit(cfg, prep, hooks)
    timings["train_s"] = time.perf_counter() - t
    model = res["model"]
    load_weights(run_dir / BEST, model.head)
    t = time.perf_counter()
    test_f = prep.features["test"]
    te = run_epoch(model, test_f, eval_batches(test_f.lengths, cfg), nn.BCEWithLogitsLoss(),
                   prep.device, progress=cfg.progress, desc="test")
    timings["test_s"] = time.perf_counter() - t
    test_metrics = classification_metrics(test_f.labels, te["probs"])
    hooks.report(f"Test Loss: {te['loss']:.3f} | Test Acc: {test_metrics['accuracy'] * 100:.2f}% "
                 f"(best epoch {res['best_epoch']})")
    model_dir = run_dir / MODEL_DIR
    save_head(model.head.cpu(), model_dir, model_metadata(cfg, prep))
    import pandas as pd
    test_df = prep.splits.test
    with atomic_path(run_dir / TEST_PREDICTIONS) as tmp:
        pd.DataFrame({"text": test_df["text"], "label": test_df["label"],
                      "prob": te["probs"]}).to_parquet(tmp)
    timings["total_s"] = time.perf_counter() - t_all
    summary = {
        "run_dir": str(run_dir), "model_dir": str(model_dir), "device": str(prep.device),
        "encoder_precision": prep.precision, "parameters": params,
        "split_sizes": prep.splits.sizes(), "data_fingerprint": prep.splits.fingerprint,
        "best_epoch": res["best_epoch"], "best_val_loss": res["best_val_loss"],
        "history": res["history"], "test": test_metrics, "test_loss": te["loss"],
        "timings": timings,
        "state_cache": {k: {kk: vv for kk, vv in v.items() if kk != "path"}
                        for k, v in prep.cache_info.items()},
        "config": cfg.to_dict(),
    }
    atomic_write_text(run_dir / METRICS, json.dumps(summary, indent=2))
    return summary
