"""The homework's training loop, done well: bucketed batches, best-by-validation-loss checkpoint,
atomic per-epoch checkpoints with optimizer and RNG state, resume, test evaluation. Each run
owns its folder (``run_folder``), checked before any data or encoder is loaded.

``train(cfg)`` is the whole stage (prepare → fit → test → save); it needs torch and
transformers only (``datasets`` is used for the tokenization cache when installed).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from sentiment.common.checksums import seal_folder
from sentiment.common.compute import resolve_encoder_precision, seed_everything, select_device, set_threads
from sentiment.common.files import atomic_path, atomic_write_text
from sentiment.common.progress import progress as show_progress
from sentiment.common.progress import say
from sentiment.data import imdb
from sentiment.data.batching import bucketed_batches, length_sorted_batches, random_batches
from sentiment.encoding import encoders, preprocessing, tokenization
from sentiment.model import encoder_layers, heads, model_folder
from sentiment.model.bert_gru import BERTGRUSentiment, count_parameters
from sentiment.model.model_folder import MODEL_DIR
from sentiment.training import distributed, run_folder, state_cache
from sentiment.training.checkpoints import BEST, CHECKPOINT, load_checkpoint, resume_point, save_checkpoint
from sentiment.training.features import build_features, head_autocast, head_call
from sentiment.training.optimization import Optimizers
from sentiment.training.outputs import METRICS, TEST_PREDICTIONS, VALID_PREDICTIONS


@dataclass
class TrainHooks:
    """Callbacks the tracking layer attaches; the library itself knows nothing of MLflow."""
    on_step: Optional[Callable[[int, dict], None]] = None    # global step, {loss, acc}
    on_epoch: Optional[Callable[[int, dict], None]] = None   # epoch (1-based), epoch metrics
    stop_after_epoch: Optional[int] = None                   # simulate an interruption (tests)
    report: Callable[[str], None] = say  # printed, or to the sink of progress.lines_to


# ---------------------------------------------------------------------------------------
# One pass over a split
# ---------------------------------------------------------------------------------------

def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (torch.round(torch.sigmoid(logits)) == y).float().mean().item()


def run_epoch(model, feats, batches, criterion, device, optimizer=None, hooks=None, step0=0,
              progress=False, desc="", parallel=None) -> dict:
    """One pass over `batches`. Under torchrun each rank takes its share of every batch, and
    the loss, accuracy and predictions returned are those of the whole split on every rank;
    `parallel` (the DDP-wrapped trained parts) runs the training forward then."""
    if distributed.active():
        return _run_epoch_sharded(model, feats, batches, criterion, device, optimizer, hooks,
                                  step0, progress, desc, parallel)
    training = optimizer is not None
    model.train(training)
    ctx = head_autocast(device)
    head = head_call(model, training, feats.precision, device)
    total_loss = total_correct = n = tokens = 0
    probs = np.zeros(len(feats.labels), dtype=np.float32)
    it = show_progress(batches, desc, progress)
    t0 = time.perf_counter()
    for step, idx in enumerate(it, start=1):
        y = torch.as_tensor(feats.labels[idx], dtype=torch.float32, device=device)
        with torch.set_grad_enabled(training):
            logits = feats.logits(model, idx, ctx, head).squeeze(1).float()
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
        it.set_postfix(**{"loss": f"{total_loss / n:.4f}", "acc": f"{total_correct / n:.2%}",
                          "tokens/s": f"{tokens / max(time.perf_counter() - t0, 1e-9):,.0f}"})
    seconds = time.perf_counter() - t0
    return {"loss": total_loss / max(n, 1), "acc": total_correct / max(n, 1), "seconds": seconds,
            "tokens_per_s": tokens / max(seconds, 1e-9), "steps": len(batches), "probs": probs}


def _run_epoch_sharded(model, feats, batches, criterion, device, optimizer, hooks, step0,
                       progress, desc, parallel) -> dict:
    training = optimizer is not None
    model.train(training)
    ctx = head_autocast(device)
    head = head_call(model, training, feats.precision, device)
    world = distributed.world_size()
    total_loss = total_correct = n = tokens = 0.0
    probs = np.zeros(len(feats.labels), dtype=np.float32)
    it = show_progress(batches, desc, progress and distributed.is_main())
    t0 = time.perf_counter()
    for step, batch in enumerate(it, start=1):
        idx = distributed.shard(batch)
        b = len(idx)
        if b == 0 and not training:
            continue
        # A batch smaller than the number of ranks leaves some ranks without a review: they
        # still take part in the gradient average, with one review weighted 0.
        run_idx = idx if b else np.asarray(batch)[:1]
        y = torch.as_tensor(feats.labels[run_idx], dtype=torch.float32, device=device)
        with distributed.peer_guard():
            with torch.set_grad_enabled(training):
                forward = parallel if training and parallel is not None else \
                    (lambda f, i, c, h: f.logits(model, i, c, h))
                logits = forward(feats, run_idx, ctx, head).squeeze(1).float()
                loss_sum = criterion(logits, y) * b  # the mean loss times this share's size
            if training:
                optimizer.zero_grad(set_to_none=True)
                # DDP averages over the ranks: sum / global batch * ranks averages to the
                # single-process mean over the whole batch, whatever the shares' sizes.
                (loss_sum * (world / len(batch))).backward()
                optimizer.step()
        correct = (torch.round(torch.sigmoid(logits.detach())) == y).float().sum().item() if b else 0.0
        if b:
            probs[idx] = torch.sigmoid(logits.detach()).cpu().numpy()
        total_loss += loss_sum.item()
        total_correct += correct
        n += b
        tokens += int(feats.lengths[idx].sum()) if b else 0
        if training:
            # Every rank takes part in the sum; only rank 0 has hooks to report it.
            step_loss, step_correct = distributed.sum_numbers(loss_sum.item(), correct)
            if hooks and hooks.on_step:
                hooks.on_step(step0 + step, {"train_loss": step_loss / len(batch),
                                             "train_acc": step_correct / len(batch)})
    seconds = time.perf_counter() - t0
    total_loss, total_correct, n, tokens = distributed.sum_numbers(total_loss, total_correct, n,
                                                                   tokens)
    probs = distributed.sum_array(probs)
    return {"loss": total_loss / max(n, 1), "acc": total_correct / max(n, 1), "seconds": seconds,
            "tokens_per_s": tokens / max(seconds, 1e-9), "steps": len(batches), "probs": probs}


def save_predictions(path: Path, labels, probs) -> None:
    import pandas as pd
    with atomic_path(path) as tmp:
        pd.DataFrame({"label": labels, "prob": probs}).to_parquet(tmp)


def epoch_batches(cfg, feats, epoch: int) -> list:
    # Batch order depends only on (seed, epoch): a resumed run sees the same batches.
    rng = np.random.default_rng([cfg.seed, epoch])
    return (bucketed_batches(feats.lengths, cfg.batch_size, rng) if cfg.bucket_batches
            else random_batches(len(feats.lengths), cfg.batch_size, rng))


def eval_batches(lengths, cfg) -> list:
    return length_sorted_batches(lengths, batch_size=cfg.eval_batch_size)


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
    encoder_spec: encoders.EncoderSpec
    splits: imdb.Splits
    tokens: dict
    features: dict
    timings: dict = field(default_factory=dict)
    cache_info: dict = field(default_factory=dict)


def prepare(cfg, splits=None) -> Prepared:
    timings: dict = {}
    set_threads(cfg.num_threads)
    device = distributed.local_device(select_device(cfg.device))
    precision = resolve_encoder_precision(cfg.encoder_precision, device)
    t = time.perf_counter()
    if splits is None:
        splits = imdb.load_splits(cfg)
    timings["load_data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    encoder, tokenizer, encoder_spec = encoders.load_encoder(
        cfg.encoder, cfg.encoder_revision, attention_dropout=cfg.encoder_attention_dropout)
    timings["load_encoder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    frames = dict(splits.items())
    with distributed.main_first():  # under torchrun: rank 0 fills the token cache
        tokens = tokenization.tokenize_splits(frames, tokenizer, cfg)
    timings["tokenize_s"] = time.perf_counter() - t
    check_disk_space(cfg, encoder, encoder_spec, precision, tokens, frames)
    encoder.to(device)
    run_encoder = encoder
    if precision == "int8":
        run_encoder = torch.ao.quantization.quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    t = time.perf_counter()
    labels = {name: df["label"].to_numpy(np.int64) for name, df in frames.items()}
    with distributed.main_first():  # one writer of the encoder-state cache; the others read it
        features, cache_info = build_features(cfg, encoder, run_encoder, encoder_spec,
                                              tokenizer.pad_token_id, tokens, labels, device,
                                              precision)
    timings["encode_s"] = time.perf_counter() - t
    return Prepared(cfg, device, precision, run_encoder, tokenizer, encoder_spec, splits, tokens,
                    features, timings, cache_info)


def check_disk_space(cfg, encoder, encoder_spec, precision, tokens, frames) -> None:
    """Before the encoder runs: room for the state-cache entries still to build and for the
    run's checkpoints, model and test predictions (a one-line RunDirError otherwise)."""
    hidden = encoder.config.hidden_size
    cache = 0
    if cfg.cache_states:
        enc_id = encoders.encoder_identity(encoder, encoder_spec)
        for tok in tokens.values():
            if not state_cache.is_cached(cfg.cache_dir,
                                         state_cache.cache_key(enc_id, tok.fingerprint, precision)):
                cache += state_cache.expected_bytes(int(tok.lengths.sum()), len(tok), hidden)
    with torch.device("meta"):  # shapes only: no memory, no draw from the RNG
        head = heads.build_head(cfg, hidden)
    weights = 4 * sum(p.numel() for p in head.parameters())
    # last, previous and one being written (weights + Adam's two moments each); best; model.
    run = 3 * 3 * weights + 2 * weights
    if "test" in frames:
        run += int(frames["test"]["text"].str.len().sum()) + 16 * len(frames["test"])
    run_folder.check_space({("encoder-state cache in", cfg.cache_dir): cache,
                            ("checkpoints and model in", cfg.run_dir): run})


def build_model(cfg, encoder) -> BERTGRUSentiment:
    torch.manual_seed(cfg.seed)
    if cfg.head == heads.GRU:
        model = BERTGRUSentiment(encoder, cfg.hidden_dim, cfg.output_dim, cfg.n_layers,
                                 cfg.bidirectional, cfg.dropout)
    else:
        model = BERTGRUSentiment.with_head(encoder, heads.build_head(cfg, encoder.config.hidden_size))
    model.train_encoder_layers(cfg.train_encoder_layers, cfg.encoder)
    # With the cache the encoder never runs in training, so its dropout cannot apply.
    model.encoder_dropout = not cfg.cache_states
    if model.trains_encoder and cfg.gradient_checkpointing:
        encoder.activation_checkpointing_enable({"use_reentrant": False})
    return model


def model_facts(model: BERTGRUSentiment) -> dict:
    """What the model card states about what trained: trainable and total parameters, and
    how many of the encoder's layers trained (0: frozen, all of them: full fine-tuning)."""
    n = encoder_layers.num_layers(model.bert)
    return {"parameters": count_parameters(model),
            "encoder_layers": {"total": n, "trained": n - model.first_trained}}


def fit(cfg, prep: Prepared, hooks: TrainHooks | None = None) -> dict:
    """The epoch loop with checkpoints; returns the history and best epoch."""
    hooks = hooks or TrainHooks()
    run_dir = Path(cfg.run_dir)
    device = prep.device
    model = build_model(cfg, prep.encoder)
    model.head.to(device)
    train_f, valid_f = prep.features["train"], prep.features["valid"]
    optimizer = Optimizers(cfg, model, device, cfg.epochs * len(epoch_batches(cfg, train_f, 0)))
    main = distributed.is_main()
    criterion = nn.BCEWithLogitsLoss()
    history: list = []
    best_val = math.inf
    best_epoch = 0
    start_epoch = 0
    ckpt = run_dir / CHECKPOINT
    if cfg.resume:
        # Chosen (and read through) before data loading when the run folder is owned.
        start = None
        if main:  # chosen by rank 0, which owns the run folder; the others load the same file
            start = run_folder.checked_resume_point(run_dir) or resume_point(run_dir, cfg,
                                                                             hooks.report)
        start = distributed.share(start)
        state = load_checkpoint(start, model.head, optimizer.head, device,
                                model.bert if model.trains_encoder else None, optimizer.encoder)
        start_epoch, history = state["epoch"], state["history"]
        best_val, best_epoch = state["best_val_loss"], state["best_epoch"]
        hooks.report(f"Resuming from epoch {start_epoch} ({start})")
    else:
        seed_everything(cfg.seed)
        torch.manual_seed(cfg.seed)
    step = sum(h["steps"] for h in history)
    optimizer.steps_done = step  # the encoder's learning-rate schedule continues from here
    parallel = distributed.data_parallel(model, device)  # None when training alone
    for epoch in range(start_epoch, cfg.epochs):
        batches = epoch_batches(cfg, train_f, epoch)
        t0 = time.perf_counter()
        tr = run_epoch(model, train_f, batches, criterion, device, optimizer, hooks, step,
                       cfg.progress, f"epoch {epoch + 1} train", parallel)
        va = run_epoch(model, valid_f, eval_batches(valid_f.lengths, cfg), criterion, device,
                       progress=cfg.progress, desc=f"epoch {epoch + 1} valid")
        secs = time.perf_counter() - t0
        step += tr["steps"]
        rec = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_acc": tr["acc"],
               "val_loss": va["loss"], "val_acc": va["acc"], "epoch_seconds": secs,
               "train_tokens_per_s": tr["tokens_per_s"], "steps": tr["steps"]}
        history.append(rec)
        improved = va["loss"] < best_val
        if improved:
            best_val, best_epoch = va["loss"], epoch + 1
        if main:  # every rank holds the same weights; rank 0 alone writes them
            if improved:
                model_folder.save_trained(run_dir / BEST, model)
                # The blend's rule is fitted on the best epoch's validation predictions; kept
                # on disk so a resumed run still has them.
                save_predictions(run_dir / VALID_PREDICTIONS, valid_f.labels, va["probs"])
            save_checkpoint(ckpt, model.head, optimizer.head,
                            {"epoch": epoch + 1, "history": history, "best_val_loss": best_val,
                             "best_epoch": best_epoch, "global_step": step,
                             "config": cfg.to_dict()},
                            model.encoder_state(), optimizer.encoder)
        distributed.barrier()  # the epoch's checkpoint is on disk before any rank goes on
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


def train(cfg, splits=None, hooks: TrainHooks | None = None) -> dict:
    """Prepare → fit → test the best checkpoint → save the model. Returns a small summary dict.

    `cfg.run_dir` left at the preset's value gives the run a new folder of its own (the
    summary's ``run_dir``); see ``run_folder.owned`` for what is checked before any work."""
    hooks = hooks or TrainHooks()
    # Under torchrun (see `distributed`): rank 0 owns the folder, reports and writes; the
    # other ranks train their share of each batch and write nothing.
    with distributed.owned_by_main(cfg, hooks.report) as cfg:
        if not distributed.is_main():
            hooks = TrainHooks(stop_after_epoch=hooks.stop_after_epoch, report=_silent)
        summary = _train(cfg, splits, hooks)
    if distributed.is_main() and Path(cfg.run_dir).parent == run_folder.preset_root(cfg):
        run_folder.point_latest(cfg.run_dir)
    return summary


def _silent(_message: str) -> None:
    pass


def _train(cfg, splits, hooks: TrainHooks) -> dict:
    from sentiment.evaluation.metrics import classification_metrics
    run_dir = Path(cfg.run_dir)
    if not cfg.resume and distributed.is_main() and (run_dir / CHECKPOINT).exists():
        hooks.report(f"Note: {run_dir} holds a finished run; its checkpoints and model are "
                     "replaced")
    t_all = time.perf_counter()
    prep = prepare(cfg, splits)
    timings = dict(prep.timings)
    t = time.perf_counter()
    res = fit(cfg, prep, hooks)
    timings["train_s"] = time.perf_counter() - t
    model = res["model"]
    model_folder.load_trained(run_dir / BEST, model)
    t = time.perf_counter()
    test_f = prep.features["test"]
    te = run_epoch(model, test_f, eval_batches(test_f.lengths, cfg), nn.BCEWithLogitsLoss(),
                   prep.device, progress=cfg.progress, desc="test")
    timings["test_s"] = time.perf_counter() - t
    test_metrics = classification_metrics(test_f.labels, te["probs"])
    hooks.report(f"Test Loss: {te['loss']:.3f} | Test Acc: {test_metrics['accuracy'] * 100:.2f}% "
                 f"(best epoch {res['best_epoch']})")
    if not distributed.is_main():  # rank 0 writes the model, predictions and metrics
        return {"run_dir": str(run_dir), "best_epoch": res["best_epoch"], "test": test_metrics,
                "rank": distributed.rank()}
    model_dir = run_dir / MODEL_DIR
    model_folder.save(model.head.cpu(), model_dir, preprocessing.from_config(cfg),
                      model.encoder_state())
    import pandas as pd
    test_df = prep.splits.test
    columns = {"text": test_df["text"], "label": test_df["label"], "prob": te["probs"]}
    blend = None
    if cfg.blend:
        from sentiment.blend.fit import fit_blend
        valid_probs = pd.read_parquet(run_dir / VALID_PREDICTIONS)["prob"].to_numpy()
        blend = fit_blend(cfg, prep.splits, valid_probs, te["probs"], model_dir)
        timings["blend_s"] = blend["seconds"]
        parts = {p: classification_metrics(test_f.labels, probs)
                 for p, probs in blend["parts"].items()}
        test_metrics = classification_metrics(test_f.labels, blend["test_probs"])
        columns.update(prob=blend["test_probs"],
                       **{f"prob_{p}": probs for p, probs in blend["parts"].items()})
        hooks.report("Blend: " + " | ".join(f"{p} {m['accuracy'] * 100:.2f}%"
                                            for p, m in parts.items())
                     + f" | blend {test_metrics['accuracy'] * 100:.2f}% (encoder share "
                       f"{blend['stacker']['encoder_share']:.2f}, fitted on "
                       f"{blend['stacker']['n']} validation reviews)")
    seal_folder(model_dir)  # every file of the finished model, the blend's included
    with atomic_path(run_dir / TEST_PREDICTIONS) as tmp:
        pd.DataFrame(columns).to_parquet(tmp)
    timings["total_s"] = time.perf_counter() - t_all
    summary = {
        "run_dir": str(run_dir), "model_dir": str(model_dir), "device": str(prep.device),
        "encoder_precision": prep.precision,
        "split_sizes": prep.splits.sizes(), "data_fingerprint": prep.splits.fingerprint,
        "data_source": imdb.data_source(cfg.data),
        # What the model card states: how many of the encoder's layers trained (0: frozen).
        **model_facts(model),
        "best_epoch": res["best_epoch"], "best_val_loss": res["best_val_loss"],
        "history": res["history"], "test": test_metrics, "test_loss": te["loss"],
        "timings": timings,
        "state_cache": {k: {kk: vv for kk, vv in v.items() if kk != "path"}
                        for k, v in prep.cache_info.items()},
        "config": cfg.to_dict(),
    }
    if blend is not None:
        summary["parts"] = parts  # each part's test metrics on the same reviews
        summary["blend"] = {"stacker": blend["stacker"], "bag_of_words": blend["bag_of_words"]}
    atomic_write_text(run_dir / METRICS, json.dumps(summary, indent=2))
    return summary
