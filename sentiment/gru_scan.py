"""The GRU head's exact unpacked kernel, for training on the CPU.

Backpropagating through a packed GRU is slow on the CPU (a shrinking batch at every time step);
per-direction scans over the right-padded batch give the same logits and gradients about 2x
faster (benchmarks/head_speed.py). Inference and GPU training keep GRUHead's packed forward.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import GRUHead


def head_forward(head: GRUHead, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``head(states, lengths)``, through the unpacked scans when training in fp32 on the CPU."""
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
