"""The head's inference copy: fp32 is the head itself; bf16 is a separate bf16 copy whose
logits stay close to fp32's, ignore padding as the head does, and leave the trained head as it
was."""

from __future__ import annotations

import torch

from sentiment.model.bert_gru import GRUHead
from sentiment.model.inference_head import inference_head

CPU = torch.device("cpu")


def _head_and_batch():
    torch.manual_seed(0)
    head = GRUHead(32, 16, 1, 2, True, 0.25).eval()
    states = torch.randn(4, 12, 32)
    lengths = torch.tensor([12, 9, 5, 1])
    return head, states, lengths


@torch.inference_mode()
def test_fp32_is_the_head_itself():
    head, states, lengths = _head_and_batch()
    torch.testing.assert_close(inference_head(head, "fp32", CPU)(states, lengths),
                               head(states, lengths), rtol=0, atol=0)


@torch.inference_mode()
def test_bf16_copy_is_close_ignores_padding_and_leaves_the_head_in_fp32():
    head, states, lengths = _head_and_batch()
    before = {k: v.clone() for k, v in head.state_dict().items()}
    low = inference_head(head, "bf16", CPU)
    logits = low(states, lengths)
    assert logits.dtype == torch.float32
    # bf16 keeps ~3 significant digits: logits agree to a few hundredths, not bit for bit.
    torch.testing.assert_close(logits, head(states, lengths), rtol=0.05, atol=0.05)
    assert not torch.equal(logits, head(states, lengths))  # it did run in bf16
    alone = low(states[2:3, :5], lengths[2:3])
    torch.testing.assert_close(alone, logits[2:3], rtol=0, atol=1e-2)
    for k, v in head.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k]), k
