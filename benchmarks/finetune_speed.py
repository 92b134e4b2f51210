"""Bench section `finetune`: tokens/s of one fine-tuning step of the trained encoder (forward,
backward, the library's AdamW step) vs the same encoder's inference, on the same batches.

Both run the library's own code: ``BERTGRUSentiment.encode`` with the config's trained layers
and attention dropout, and ``sentiment.training.optimization.Optimizers``. The batches are full
(batch_size x max_length real tokens, the longest test reviews), so padding plays no part.
Variants alternate within each repetition, so a load change hits both alike; the ratio of
medians is the figure (`finetune_vs_inference`, lower is better; the FLOP ratio is about 3).
"""

from __future__ import annotations

import statistics
import time

import torch
from common import print_table, sync

from sentiment.common.compute import encoder_autocast
from sentiment.data.batching import pad_ids
from sentiment.encoding import encoders
from sentiment.model.bert_gru import BERTGRUSentiment
from sentiment.training.optimization import Optimizers


def _batches(ids, batch_size: int, n_batches: int):
    longest = sorted(ids, key=len, reverse=True)[:batch_size * n_batches]
    return [pad_ids(longest[i:i + batch_size], 0) for i in range(0, len(longest), batch_size)]


def bench_finetune(cfg, ids, device, precision: str = "fp32", reps: int = 5) -> dict:
    """`ids`: tokenized reviews (the test split at the config's length). The trained layers are
    the config's, or all of them when the config keeps the encoder frozen."""
    layers = cfg.train_encoder_layers or -1
    encoder, _, _ = encoders.load_encoder(cfg.encoder, cfg.encoder_revision,
                                          attention_dropout=cfg.encoder_attention_dropout)
    encoder.to(device)
    model = BERTGRUSentiment(encoder, cfg.hidden_dim, cfg.output_dim, cfg.n_layers,
                             cfg.bidirectional, cfg.dropout).train_encoder_layers(layers, cfg.encoder)
    model.to(device)
    probe = torch.nn.Linear(encoder.config.hidden_size, 1).to(device)
    opt = Optimizers(cfg.replace(train_encoder_layers=layers), model, device, total_steps=1000)
    batches = _batches(ids, cfg.batch_size, 2)

    def infer(b):
        model.eval()
        ids_, mask = b[0].to(device), b[1].to(device)
        with torch.inference_mode(), encoder_autocast(device, precision):
            encoder(input_ids=ids_, attention_mask=mask)
        sync(device)

    def step(b):
        model.train()
        ids_, mask = b[0].to(device), b[1].to(device)
        with encoder_autocast(device, precision):
            h = model.encode(ids_, mask)
        pooled = (h.float() * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            probe(pooled).squeeze(1), torch.ones(len(mask), device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync(device)

    res = {"inference": [], "finetune": [], "inference_cpu": [], "finetune_cpu": []}
    for b in batches:  # warm-up: allocator, kernels, optimizer state
        infer(b)
        step(b)
    for r in range(reps):
        for b in batches:
            tokens = int(b[1].sum())
            for name, fn in (("inference", infer), ("finetune", step))[::1 if r % 2 == 0 else -1]:
                c, t = time.process_time(), time.perf_counter()
                fn(b)
                res[name].append(tokens / (time.perf_counter() - t))
                res[name + "_cpu"].append(tokens / max(time.process_time() - c, 1e-9))
    med = {k: statistics.median(v) for k, v in res.items()}
    out = {"encoder": cfg.encoder, "train_encoder_layers": layers, "precision": precision,
           "attention_dropout": cfg.encoder_attention_dropout, "batch_shape": list(batches[0][0].shape),
           "reps": reps, "inference_tokens_per_s": med["inference"],
           "finetune_tokens_per_s": med["finetune"],
           "finetune_vs_inference": med["inference"] / med["finetune"],
           # Process CPU time instead of wall time: the same ratio, less sensitive to other load.
           "finetune_vs_inference_cpu_time": med["inference_cpu"] / med["finetune_cpu"],
           "raw": res}
    print_table(["variant", "tokens/s (median)", "ratio"],
                [["inference (eval, inference_mode)", f"{med['inference']:.0f}", "1.00"],
                 [f"fine-tune step (layers {layers}, forward+backward+AdamW)",
                  f"{med['finetune']:.0f}", f"{out['finetune_vs_inference']:.2f}x"]],
                title=f"Fine-tuning vs inference, {cfg.encoder} {precision}, batches "
                      f"{out['batch_shape'][0]}x{out['batch_shape'][1]}, attention dropout "
                      f"{cfg.encoder_attention_dropout}; CPU-time ratio "
                      f"{out['finetune_vs_inference_cpu_time']:.2f}x")
    return out
