"""The head's inference in the precision of the encoder pass before it.

On a CPU with native bf16 (AVX-512 BF16 or AMX) a bf16 copy of the GRU head runs oneDNN's bf16
RNN kernel: about 4x faster than the fp32 GRU, which took as long as the fine-tuned encoder
itself at inference (benchmarks/inference_speed.py). Not through autocast: autocast keeps the
CPU GRU's weights in fp32 and makes it several times slower. On CUDA the loops' autocast
already runs cuDNN's GRU in bf16, and in fp32 nothing changes. Training never comes here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


def inference_head(head: nn.Module, precision: str, device: torch.device
                   ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(states, lengths) -> fp32 logits`` for inference with `head` in `precision`. The bf16
    copy is taken now: call it again after the head's weights change."""
    if precision != "bf16" or device.type != "cpu":
        return lambda states, lengths: head(states.to(head_dtype(head)), lengths)
    low = copy.deepcopy(head).to(torch.bfloat16).eval()
    return lambda states, lengths: low(states.to(torch.bfloat16), lengths).float()


def head_dtype(head: nn.Module) -> torch.dtype:
    return next(head.parameters()).dtype
