"""The optimizers of one run: Adam for the GRU head (as in the homework), AdamW with linear
warm-up and linear decay for the trained encoder layers.

The encoder's learning rate is a pure function of the global step, so a resumed run needs only
the step count (kept in the checkpoint) to continue the schedule exactly.
"""

from __future__ import annotations

import torch

# Parameters that conventionally get no weight decay: biases and LayerNorm scales.
NO_DECAY = ("bias", "LayerNorm.weight", "layernorm.weight", "layer_norm.weight")


def warmup_linear(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor of 0-based optimizer step `step` of `total`: (step+1)/warmup while
    warming up, then a linear decay that reaches 0 just after the last step."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class Optimizers:
    """The head's Adam and, when encoder layers train, the encoder's scheduled AdamW."""

    def __init__(self, cfg, model, device, total_steps: int):
        self.head = torch.optim.Adam(model.head.parameters(), lr=cfg.lr)
        self.encoder = None
        self.steps_done = 0
        self.total_steps = max(1, total_steps)
        self.warmup_steps = round(cfg.warmup_ratio * self.total_steps)
        self.peak_lr = cfg.encoder_lr
        params = model.encoder_parameters()
        if params:
            decay = [p for n, p in params if not n.endswith(NO_DECAY)]
            no_decay = [p for n, p in params if n.endswith(NO_DECAY)]
            # The fused kernel is one op per step instead of a dozen per tensor (CPU and CUDA).
            self.encoder = torch.optim.AdamW(
                [{"params": decay, "weight_decay": cfg.encoder_weight_decay},
                 {"params": no_decay, "weight_decay": 0.0}],
                lr=self.lr_at(0), fused=device.type in ("cpu", "cuda"))

    def lr_at(self, step: int) -> float:
        return self.peak_lr * warmup_linear(step, self.total_steps, self.warmup_steps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.head.zero_grad(set_to_none=set_to_none)
        if self.encoder is not None:
            self.encoder.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.head.step()
        if self.encoder is not None:
            lr = self.lr_at(self.steps_done)
            for group in self.encoder.param_groups:
                group["lr"] = lr
            self.encoder.step()
        self.steps_done += 1
