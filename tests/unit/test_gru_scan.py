"""The merged-direction GRU scans (sentiment.model.gru_scan) against the packed nn.GRU: the same
logits and the same gradients w.r.t. the states and every parameter."""

from __future__ import annotations

import pytest
import torch

from sentiment.model import gru_scan
from sentiment.model.bert_gru import GRUHead
from sentiment.model.gru_scan import head_forward, scan_head_forward


def _case(seed, B=6, T=11, E=12, H=8, bidirectional=True, layers=2, dropout=0.0, pad_extra=3):
    torch.manual_seed(seed)
    head = GRUHead(E, H, 1, layers, bidirectional, dropout)
    # Lengths 1 and T always present; the batch carries padding past the longest review too.
    lengths = torch.cat([torch.tensor([1, T]), torch.randint(1, T + 1, (B - 2,))])
    states = torch.randn(B, T + pad_extra, E) * 2
    for i, n in enumerate(lengths):
        states[i, n:] = 1e3  # garbage in the padding must not reach any real token
    return head, states, lengths


def _logits_and_grads(head, states, lengths, fn):
    head.zero_grad(set_to_none=True)
    x = states.clone().requires_grad_(True)
    logits = fn(head, x, lengths)
    # A loss that weighs every logit differently, so each one's gradient matters.
    (logits * torch.linspace(-1, 2, logits.numel()).view_as(logits)).sum().backward()
    return logits.detach(), x.grad, {n: p.grad.clone() for n, p in head.named_parameters()}


def _packed(head, states, lengths):
    return head(states, lengths)


@pytest.mark.parametrize("bidirectional,layers", [(True, 2), (False, 2), (True, 1), (True, 3)])
@pytest.mark.parametrize("train", [True, False])
def test_training_path_equals_the_packed_gru(bidirectional, layers, train):
    head, states, lengths = _case(1, bidirectional=bidirectional, layers=layers)
    head.train(train)
    ref, ref_dx, ref_grads = _logits_and_grads(head, states, lengths, _packed)
    out, dx, grads = _logits_and_grads(head, states, lengths, scan_head_forward)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-5, atol=1e-6)
    assert set(grads) == set(ref_grads)
    for n, g in ref_grads.items():
        torch.testing.assert_close(grads[n], g, rtol=1e-5, atol=1e-6, msg=n)
    assert dx[states == 1e3].abs().max() == 0  # padding gets no gradient


def test_head_sized_case_with_eval_dropout():
    """The homework's head shape (dropout set, eval mode) on a bucketed batch of 64 tokens."""
    torch.manual_seed(2)
    head = GRUHead(48, 32, 1, 2, True, 0.25).eval()
    lengths = torch.tensor([64, 63, 61, 64, 1, 40, 64, 62])
    states = torch.randn(8, 64, 48)
    ref, ref_dx, ref_grads = _logits_and_grads(head, states, lengths, _packed)
    out, dx, grads = _logits_and_grads(head, states, lengths, scan_head_forward)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-5, atol=1e-6)
    for n, g in ref_grads.items():
        torch.testing.assert_close(grads[n], g, rtol=1e-5, atol=1e-6, msg=n)


def test_inference_path_equals_the_packed_gru_and_without_lengths_the_unpacked_one():
    head, states, lengths = _case(3)
    head.eval()
    with torch.inference_mode():
        torch.testing.assert_close(scan_head_forward(head, states, lengths), head(states, lengths),
                                   rtol=1e-5, atol=1e-6)
        full = states[:, :5]
        torch.testing.assert_close(scan_head_forward(head, full, None), head(full),
                                   rtol=1e-5, atol=1e-6)


def test_dropout_between_layers_trains():
    """p > 0: masks cannot match nn.GRU's draws, so only what must hold: shapes, finite values,
    a gradient for every parameter and the states, and different masks on different calls."""
    head, states, lengths = _case(4, dropout=0.5)
    head.train()
    out, dx, grads = _logits_and_grads(head, states, lengths, scan_head_forward)
    assert out.shape == (6, 1) and torch.isfinite(out).all()
    assert torch.isfinite(dx).all() and dx.abs().sum() > 0
    for n, g in grads.items():
        assert torch.isfinite(g).all() and g.abs().sum() > 0, n
    again = scan_head_forward(head, states, lengths).detach()
    assert not torch.equal(again, out)
    head.eval()
    with torch.no_grad():
        torch.testing.assert_close(scan_head_forward(head, states, lengths), head(states, lengths),
                                   rtol=1e-5, atol=1e-6)


def test_head_forward_takes_the_scan_for_cpu_training_only(monkeypatch):
    head, states, lengths = _case(5)
    calls = []
    real = gru_scan.scan_head_forward
    monkeypatch.setattr(gru_scan, "scan_head_forward", lambda *a: calls.append(1) or real(*a))
    head_forward(head, states, lengths)
    assert calls == [1]
    with torch.no_grad():
        head_forward(head, states, lengths)
    head_forward(head.double(), states.double(), lengths)
    assert calls == [1]


@pytest.mark.parametrize("loop_threads", [1, 2])
def test_loop_threads_leave_the_thread_count_as_it_was(monkeypatch, loop_threads):
    head, states, lengths = _case(6)
    monkeypatch.setattr(gru_scan, "LOOP_THREADS", loop_threads)
    before = torch.get_num_threads()
    ref, ref_dx, _ = _logits_and_grads(head, states, lengths, _packed)
    out, dx, _ = _logits_and_grads(head, states, lengths, scan_head_forward)
    assert torch.get_num_threads() == before
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-5, atol=1e-6)
