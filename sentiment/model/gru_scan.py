"""The GRU head's exact kernels for the CPU: a merged-direction scan with a hand-written
backward for training, the same scan without autograd for inference.

Backpropagating through ``nn.GRU`` on the CPU is slow: autograd records a dozen small ops per
time step and direction, and a packed batch shrinks at every step. Here each layer runs both
directions in ONE scan over the right-padded batch (the reverse direction over each review's
real tokens reversed in place), one batched matmul per step for the two recurrent products,
and its backward is one loop with one batched matmul per step; the input projections of all
time steps and the recurrent weights' gradients are a few large matmuls outside the loops.
Padding only trails each scan's real tokens, so it never reaches them: same logits and
gradients as the packed GRU, with the same parameters (the nn.GRU's own).
benchmarks/head_speed.py times it against the packed GRU and the per-direction scans.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from sentiment.model.bert_gru import GRUHead


def head_forward(head: GRUHead, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``head(states, lengths)``, through the merged scan when training a GRU head in fp32 on
    the CPU (any other head runs its own forward)."""
    if torch.is_grad_enabled() and isinstance(head, GRUHead) and supports(head, states):
        return scan_head_forward(head, states, lengths)
    return head(states, lengths)


def supports(head: GRUHead, states: torch.Tensor) -> bool:
    """Whether the merged scan computes this head on these states (fp32 on the CPU, with
    biases, as GRUHead builds it; autocast would change the packed GRU's precision)."""
    return (states.device.type == "cpu" and states.dtype == torch.float32 and head.rnn.bias
            and head.out.weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


class _GRULayer(torch.autograd.Function):
    """One GRU layer's recurrence, all directions in one scan.

    g [B, T, D*3H]: the input projections plus bias_ih, as the layer's linear map gives them
    (batch-first, both directions side by side); w_hh [D, 3H, H]; b_hh [D, 1, 3H]; rows
    [T, D*B]: per scan step, the rows of g seen as [B*T*D, 3H] that it reads (``_scan_rows``).
    Returns the hidden states [B, T, D*H] where nn.GRU puts them (h0 = 0).

    The forward saves, per step, what turns the gradient w.r.t. a step's output into those
    w.r.t. its pre-activations (one multiply), not autograd's graph; the backward is then one
    batched matmul and three small ops per step. Both loops write into preallocated buffers:
    fresh large tensors cost page faults, and at these sizes an op's dispatch costs about as
    much as its arithmetic."""

    @staticmethod
    def forward(ctx, g, w_hh, b_hh, rows):
        B, T, _ = g.shape
        D, H3, H = w_hh.shape
        with _loop_threads():
            hs, coef, z = _scan(g, w_hh, b_hh, rows, keep=True)
        ctx.save_for_backward(w_hh, rows, hs, coef, z)
        return _unscan(hs[:, 1:], rows, g.new_empty(B * T * D, H)).view(B, T, D * H)

    @staticmethod
    def backward(ctx, grad_y):
        w_hh, rows, hs, coef, z = ctx.saved_tensors
        D, T1, B, H = hs.shape
        T, H3 = T1 - 1, 3 * H
        dy = grad_y.reshape(B * T * D, H)
        # Per step: [r, z, n-part of h W_hh^T + b_hh, gi_n]'s gradients; the first three are
        # the recurrent pre-activations' (contiguous, for the matmuls), gi's are r, z and the last.
        e = dy.new_empty(D, T, B, 4 * H)
        with _loop_threads():
            dh = dy.index_select(0, rows[T - 1]).view(D, B, H)
            for t in range(T - 1, -1, -1):
                torch.mul(dh.unsqueeze(2), coef[:, t], out=e[:, t].view(D, B, 4, H))
                if t:
                    # dh_prev = dh z + dgh W_hh, plus the output's own gradient at t - 1.
                    dh = torch.baddbmm(
                        torch.addcmul(dy.index_select(0, rows[t - 1]).view(D, B, H), dh, z[:, t]),
                        e[:, t, :, :H3], w_hh)
        # All steps' recurrent weight gradients in one matmul: [D, 3H, T*B] @ [D, T*B, H].
        dgh = e.view(D, T * B, 4 * H)[..., :H3]
        dw_hh = torch.bmm(dgh.transpose(1, 2), hs[:, :T].reshape(D, T * B, H))
        db_hh = dgh.sum(1, keepdim=True)
        dg = dy.new_empty(B * T * D, H3)
        _unscan(e[..., :2 * H], rows, dg[:, :2 * H])
        _unscan(e[..., H3:], rows, dg[:, 2 * H:])
        return dg.view(B, T, D * H3), dw_hh, db_hh, None


def _scan(g: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, rows: torch.Tensor, keep: bool):
    """The forward recurrence (see _GRULayer). Returns the states [D, T + 1, B, H] (h0 = 0
    first) and, if ``keep``, per step the factors [D, T, B, 4, H] that map dh to the gradients
    of [r, z, ghn, gi_n] (ghn: the n-part of h W_hh^T + b_hh) and z [D, T, B, H]."""
    B, T, _ = g.shape
    D, H3, H = w_hh.shape
    H2 = 2 * H
    gflat = g.reshape(B * T * D, H3)
    hs = g.new_empty(D, T + 1, B, H)
    hs[:, 0] = 0
    coef = g.new_empty(D, T, B, 4, H) if keep else None
    z_all = g.new_empty(D, T, B, H) if keep else None
    one = g.new_ones(())
    w_t = w_hh.transpose(1, 2)
    for t in range(T):
        h = hs[:, t]
        gi = gflat.index_select(0, rows[t]).view(D, B, H3)
        gh = torch.baddbmm(b_hh, h, w_t)
        rz = torch.sigmoid_(gi[..., :H2].add_(gh[..., :H2]))
        r, z = rz[..., :H], rz[..., H:]
        ghn = gh[..., H2:]
        n = torch.tanh_(torch.addcmul(gi[..., H2:], r, ghn))
        d = h - n
        # h' = (1 - z) n + z h
        torch.addcmul(n, z, d, out=hs[:, t + 1])
        if keep:
            # n = tanh(gi_n + r ghn): d/d(gi_n) = dh (1 - z)(1 - n^2) =: dh cn; d/d(ghn) = dh cn r;
            # d/d(r's pre-activation) = dh cn ghn r (1 - r); z's: dh (h - n) z (1 - z).
            c = coef[:, t]
            cn = torch.addcmul(one, n, n, value=-1)
            torch.addcmul(cn, z, cn, value=-1, out=c[:, :, 3])
            torch.mul(c[:, :, 3], r, out=c[:, :, 2])
            torch.mul(c[:, :, 2], ghn, out=c[:, :, 0]).addcmul_(c[:, :, 0], r, value=-1)
            torch.mul(d, z, out=c[:, :, 1]).addcmul_(c[:, :, 1], z, value=-1)
            z_all[:, t] = z
    return hs, coef, z_all


def _scan_rows(lengths: torch.Tensor, T: int, D: int) -> torch.Tensor:
    """[T, D*B]: for scan step t, direction d, review b, the row of a [B, T, D, F] tensor seen as
    [B*T*D, F]. The forward direction's step t is token t; the reverse direction's is token
    L-1-t while t < L (each review's real tokens reversed in place), then the padding in order.
    Padding thus trails the real tokens in both scans and never reaches them."""
    B = lengths.numel()
    t = torch.arange(T, device=lengths.device).view(T, 1)
    L = lengths.view(1, B)
    pos = [t.expand(T, B), torch.where(t < L, L - 1 - t, t)][:D]
    b = torch.arange(B, device=lengths.device).view(1, B)
    return torch.stack([(b * T + p) * D + d for d, p in enumerate(pos)], dim=1).reshape(T, D * B)


# Intra-op threads for the scans' per-step ops (None: as set). One: a step's matmul is too small
# to share, and with OMP_WAIT_POLICY=PASSIVE waking a second thread for each of thousands of
# steps cost more than it saved (benchmarks/head_speed.py); the big matmuls keep every thread.
LOOP_THREADS: int | None = 1


@contextlib.contextmanager
def _loop_threads():
    n0 = torch.get_num_threads()
    if LOOP_THREADS is None or LOOP_THREADS == n0:
        yield
        return
    torch.set_num_threads(LOOP_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(n0)


def _unscan(x: torch.Tensor, rows: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Scan-ordered x [D, T, B, F] into dst [B*T*D, F], where nn.GRU puts it."""
    D, T, B, F = x.shape
    by_dir = rows.view(T, D, B).transpose(0, 1)
    for d in range(D):
        dst.index_copy_(0, by_dir[d].reshape(-1), x[d].reshape(T * B, F))
    return dst


def scan_head_forward(head: GRUHead, states: torch.Tensor,
                      lengths: torch.Tensor | None) -> torch.Tensor:
    """GRUHead's forward, exact, through the merged-direction scans: with gradients (the
    training path) or without (inference). states [B, T, E] right-padded; lengths [B] of real
    tokens (None: all T). Dropout between layers as nn.GRU applies it."""
    rnn = head.rnn
    B, T, _ = states.shape
    H = rnn.hidden_size
    D = 2 if rnn.bidirectional else 1
    dev = states.device
    if lengths is None:
        L = torch.full((B,), T, device=dev)
    else:
        L = lengths.to(dev)
        # Steps past the longest review would only scan padding.
        T = int(L.max())
    x = states[:, :T]
    rows = _scan_rows(L, T, D)
    sfx = ("", "_reverse")[:D]
    grad = torch.is_grad_enabled()
    for layer in range(rnn.num_layers):
        p = [[getattr(rnn, f"{n}_l{layer}{s}") for s in sfx]
             for n in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")]
        g = nn.functional.linear(x, torch.cat(p[0]), torch.cat(p[1]))
        w_hh, b_hh = torch.stack(p[2]), torch.stack(p[3]).unsqueeze(1)
        if grad:
            x = _GRULayer.apply(g, w_hh, b_hh, rows)
        else:
            with _loop_threads():
                hs = _scan(g, w_hh, b_hh, rows, keep=False)[0]
            x = _unscan(hs[:, 1:], rows, g.new_empty(B * T * D, H)).view(B, T, D * H)
        if layer < rnn.num_layers - 1 and rnn.dropout > 0:
            x = nn.functional.dropout(x, rnn.dropout, rnn.training)
    # Each scan's state after its last real token: token L-1 forward, token 0 in reverse.
    final = x[torch.arange(B, device=dev), L - 1, :H]
    if D == 2:
        final = torch.cat((final, x[:, 0, H:]), dim=1)
    return head.out(head.dropout(final))


def unpacked_head_forward(head: GRUHead, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """GRUHead's forward, exact, on the right-padded batch: per layer, a forward scan and a
    forward scan over each review reversed in place (its real tokens only) stand in for the
    packed bidirectional GRU, each through ``_VF.gru`` with autograd. The merged scan
    (``scan_head_forward``) replaced it for training; it stays as the benchmark's reference."""
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
