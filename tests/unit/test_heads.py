"""The heads beside the GRU (sentiment.model.heads): padding, gradients, the model folder, the
Config that chooses them, and the linear-attention head's memory."""

from __future__ import annotations

import json

import pytest
import torch

from sentiment.config import Config
from sentiment.model import heads, model_folder

KINDS = list(heads.HEADS)


def _head(kind: str, emb: int = 12, **kw):
    cfg = Config(head=kind, hidden_dim=8, n_layers=1, attention_heads=2, linformer_k=5,
                 max_length=16, cnn_widths="2,3", dropout=0.0, **kw)
    torch.manual_seed(0)
    return heads.build_head(cfg, emb)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reviews_logit_is_the_same_alone_and_padded_in_a_batch(kind):
    head = _head(kind).eval()
    torch.manual_seed(1)
    review = torch.randn(1, 4, 12)  # shorter than the batch, and than no filter width
    alone = head(review, torch.tensor([4]))
    # In a batch, beside a longer review, its padding full of garbage (an encoder's pad states).
    other = torch.randn(1, 11, 12)
    batch = torch.cat([torch.cat([review, 50 * torch.randn(1, 7, 12)], dim=1), other])
    padded = head(batch, torch.tensor([4, 11]))
    assert torch.allclose(padded[0], alone[0], atol=1e-5), (padded[0], alone[0])
    assert torch.allclose(padded[1], head(other, torch.tensor([11]))[0], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    head = _head(kind).train()
    torch.manual_seed(2)
    states = torch.randn(3, 9, 12, requires_grad=True)
    out = head(states, torch.tensor([9, 5, 2]))
    assert out.shape == (3, 1)
    torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], torch.tensor([1., 0., 1.])).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # Padded positions get no gradient: they took no part in the logit.
    assert states.grad[2, 2:].abs().max() == 0 and states.grad[2, :2].abs().max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_model_folder_round_trip_rebuilds_the_named_head(tmp_path, kind):
    from sentiment.encoding import preprocessing
    head = _head(kind).eval()
    spec = preprocessing.from_config(Config.from_preset("smoke"))
    model_folder.save(head, tmp_path, spec)
    raw = json.loads((tmp_path / model_folder.HEAD_CONFIG).read_text())
    assert raw["head"] == kind
    loaded, spec2 = model_folder.load(tmp_path)
    assert type(loaded) is type(head) and spec2 == spec and not loaded.training
    x = torch.randn(2, 7, 12)
    assert torch.equal(loaded(x, torch.tensor([7, 3])), head(x, torch.tensor([7, 3])))


def test_a_gru_folder_without_a_head_name_loads_as_a_gru(tmp_path):
    from sentiment.encoding import preprocessing
    model_folder.save(_head("gru"), tmp_path, preprocessing.from_config(Config()))
    path = tmp_path / model_folder.HEAD_CONFIG
    raw = json.loads(path.read_text())
    del raw["head"]
    path.write_text(json.dumps(raw))
    assert type(model_folder.load_head(tmp_path)).__name__ == "GRUHead"
    path.write_text(json.dumps({**raw, "head": "lstm"}))
    with pytest.raises(ValueError, match="malformed head config: head 'lstm' is not one of"):
        model_folder.load_head(tmp_path)
    path.write_text(json.dumps({**raw, "head": "cnn"}))
    with pytest.raises(ValueError, match="a cnn head expects exactly the keys"):
        model_folder.load_head(tmp_path)


@pytest.mark.parametrize("changes,needle", [
    (dict(head="transformer"), "head='transformer' is not one of"),
    (dict(head="linformer", hidden_dim=10, attention_heads=4), "multiple of attention_heads=4"),
    (dict(head="cnn", cnn_widths="3,x"), "cnn_widths='3,x'"),
    (dict(linformer_k=0), "linformer_k must be >= 1"),
])
def test_bad_head_settings_are_one_line_errors(changes, needle):
    with pytest.raises(ValueError, match="invalid config") as e:
        Config(**changes)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_linformer_refuses_a_review_longer_than_its_projection():
    with pytest.raises(ValueError, match="longer than its max_len=16"):
        _head("linformer")(torch.randn(1, 17, 12), torch.tensor([17]))


def _saved_bytes(head, T: int) -> int:
    """Bytes of the tensors the forward keeps for the backward: a training step's activation
    memory, the part that grows with the review's length."""
    total = 0

    def keep(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t
    x = torch.randn(2, T, 16)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        out = head(x, torch.tensor([T, T // 2]))
    out.sum().backward()
    return total


def test_linear_attention_memory_grows_linearly_with_length():
    from sentiment.model.linear_attention_head import LinearAttentionHead
    torch.manual_seed(0)
    head = LinearAttentionHead(16, 16, 2, 1, 0.0)
    short, long = _saved_bytes(head, 256), _saved_bytes(head, 1024)
    # 4x the length: 4x the memory when linear, 16x when a [T, T] matrix is kept.
    assert 3.5 < long / short < 4.5, (short, long)

    class Softmax(torch.nn.Module):  # the quadratic reference the measure must tell apart
        def forward(self, q, k, v, mask):
            s = torch.einsum("bthd,bshd->bhts", q, k).masked_fill(~mask[:, None, None, :],
                                                                   float("-inf"))
            return torch.einsum("bhts,bshd->bthd", s.softmax(-1), v)
    head.attention = Softmax()
    assert _saved_bytes(head, 1024) / _saved_bytes(head, 256) > 8


def test_every_head_trains_in_the_model_and_reports_its_parameters():
    from sentiment.encoding import encoders
    from sentiment.model.bert_gru import count_parameters
    from sentiment.training.loop import build_model
    encoder, _, _ = encoders.load_encoder("random-tiny")
    counts = {}
    for kind in KINDS:
        cfg = Config(head=kind, hidden_dim=8, attention_heads=2, linformer_k=4, max_length=16)
        model = build_model(cfg, encoder)
        assert heads.kind_of(model.head) == kind
        counts[kind] = count_parameters(model)["trainable"]
        assert counts[kind] == sum(p.numel() for p in model.head.parameters())
    assert len(set(counts.values())) == len(KINDS)  # four different architectures
