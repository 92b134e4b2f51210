"""Encoder fine-tuning: the top layers on cached lower-layer states compute what the whole
encoder computes, a resumed run equals an uninterrupted one, a saved model reloads, and the
frozen default keeps the homework's model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from sentiment.common.checksums import CHECKSUMS
from sentiment.config import Config
from sentiment.encoding import encoders
from sentiment.encoding.tokenization import TokenizedSplit, encode_texts
from sentiment.model import encoder_layers, model_folder
from sentiment.model.bert_gru import BERTGRUSentiment, count_parameters
from sentiment.model.gru_scan import head_forward
from sentiment.training import state_cache
from sentiment.training.features import CachedFeatures, head_autocast, head_call

TEXTS = ["A wonderful film, moving and funny from start to end.",
         "Dull. I hated every minute of it and left early.",
         "Not bad at all",
         "The plot made no sense, the acting was wooden, and the music was far too loud."]
LABELS = np.array([1, 0, 1, 0])


def quiet(_msg: str) -> None:
    pass


def smoke_cfg(tmp_path, imdb_dir, **kw) -> Config:
    base = dict(data=str(imdb_dir), run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
                progress=False, track=False, encoder="random-tiny")
    return Config.from_preset("smoke", **{**base, **kw})


@pytest.fixture(scope="module")
def minilm():
    encoder, tokenizer, _ = encoders.load_encoder("minilm")
    return encoder, tokenizer


def _loss_and_grads(model, logits_fn):
    """Loss and gradients (trained encoder layers and head) with the same dropout masks."""
    model.zero_grad(set_to_none=True)
    model.train()
    torch.manual_seed(0)
    logits = logits_fn().squeeze(1)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(LABELS, dtype=torch.float32))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


def test_partial_finetuning_on_cached_states_matches_the_whole_encoder(minilm, tmp_path):
    encoder, tok = minilm
    ids_list = [np.array(x) for x in encode_texts(tok, TEXTS, 64)]
    model = BERTGRUSentiment(encoder, 16, 1, 2, True, 0.25).train_encoder_layers(2)
    assert model.first_trained == 4
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("head.", "bert.encoder.layer.4.", "bert.encoder.layer.5."))
                           for n in trained)
    from sentiment.data.batching import pad_ids
    ids, mask = pad_ids(ids_list, tok.pad_token_id)
    lengths = mask.sum(1)

    # Reference: the whole encoder as transformers runs it, its lower layers frozen.
    def whole():
        return head_forward(model.head, encoder(input_ids=ids, attention_mask=mask)[0], lengths)
    ref_loss, ref_grads = _loss_and_grads(model, whole)
    assert set(ref_grads) == trained

    # The states entering layer 4, computed once without gradients, in fp32: exact math.
    with torch.inference_mode():
        entering = encoder_layers.states_entering(encoder, ids, mask, 4)
    loss32, grads32 = _loss_and_grads(
        model, lambda: head_forward(model.head, model.encode_from(entering.clone(), mask), lengths))
    assert loss32 == pytest.approx(ref_loss, rel=1e-5, abs=1e-6)
    for n in trained:
        torch.testing.assert_close(grads32[n], ref_grads[n], rtol=1e-4, atol=1e-6, msg=n)

    # The library's path: the state cache at layer 4 (stored as float16) and CachedFeatures.
    split = TokenizedSplit(ids_list, LABELS, fingerprint="finetune-test")
    store, info = state_cache.get_or_build(encoder, split, encoder_id="minilm-test",
                                           cache_dir=tmp_path, device=torch.device("cpu"),
                                           precision="fp32", pad_id=tok.pad_token_id, layer=4)
    assert not info["hit"] and store.manifest["layer"] == 4
    frozen_key = state_cache.cache_key("minilm-test", "finetune-test", "fp32")
    assert info["key"] != frozen_key  # the layer is part of the key
    feats = CachedFeatures(store, LABELS, torch.device("cpu"))
    idx = np.arange(len(TEXTS))
    loss16, grads16 = _loss_and_grads(
        model, lambda: feats.logits(model, idx, head_autocast(torch.device("cpu")),
                                    head_call(model, True, "fp32", torch.device("cpu"))))
    # float16 storage rounds each state to ~3 significant digits.
    assert loss16 == pytest.approx(ref_loss, rel=2e-3)
    for n in trained:
        scale = ref_grads[n].abs().max().item()
        assert (grads16[n] - ref_grads[n]).abs().max().item() <= 2e-2 * scale + 1e-7, n


def _run_tensors(run_dir):
    from safetensors.torch import load_file
    out = {f"head/{k}": v for k, v in load_file(str(run_dir / "model" / "head.safetensors")).items()}
    enc = run_dir / "model" / model_folder.ENCODER_LAYERS
    if enc.exists():
        out.update({f"encoder/{k}": v for k, v in load_file(str(enc)).items()})
    return out


@pytest.mark.parametrize("layers,cache_states", [(1, True), (-1, True)])
def test_resume_with_a_trained_encoder_is_bit_identical(tmp_path, imdb_dir, layers, cache_states):
    from sentiment.training.loop import TrainHooks, train
    common = dict(epochs=3, train_encoder_layers=layers, cache_states=cache_states,
                  encoder_lr=1e-3, encoder_attention_dropout=0.0)
    full = smoke_cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "full"), **common)
    s_full = train(full, hooks=TrainHooks(report=quiet))
    part = smoke_cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "part"), **common)
    with pytest.raises(KeyboardInterrupt):
        train(part, hooks=TrainHooks(report=quiet, stop_after_epoch=1))
    from safetensors import safe_open
    with safe_open(str(tmp_path / "part" / "checkpoints" / "last.safetensors"), "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    assert any(k.startswith("encoder.encoder.layer.") for k in keys)
    assert any(k.startswith("encoder_optim.") for k in keys)
    assert json.loads(meta["state"])["global_step"] == s_full["history"][0]["steps"]
    s_part = train(part.replace(resume=True), hooks=TrainHooks(report=quiet))
    assert [h["val_loss"] for h in s_part["history"]] == [h["val_loss"] for h in s_full["history"]]
    a, b = _run_tensors(tmp_path / "full"), _run_tensors(tmp_path / "part")
    n_layers = 2 if layers == -1 else 1
    assert sum(k.startswith("encoder/") for k in a) == 16 * n_layers
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The trained layers moved away from the base encoder's weights.
    base, _, _ = encoders.load_encoder("random-tiny")
    own = base.state_dict()
    assert any(not torch.equal(own[k[8:]], v) for k, v in a.items() if k.startswith("encoder/"))
    assert s_full["parameters"]["trainable"] > count_parameters(
        BERTGRUSentiment(base, 256, 1, 2, True, 0.25))["trainable"]


def test_saved_finetuned_model_reloads_and_predicts_the_same(tmp_path, imdb_dir):
    import pandas as pd

    from sentiment.model.predict import SentimentModel
    from sentiment.training.loop import TrainHooks, train
    cfg = smoke_cfg(tmp_path, imdb_dir, epochs=1, train_encoder_layers=-1, encoder_lr=1e-3,
                    encoder_precision="fp32")
    train(cfg, hooks=TrainHooks(report=quiet))
    run = tmp_path / "run"
    saved = pd.read_parquet(run / "test_predictions.parquet")
    loaded = SentimentModel.load(run, device="cpu", precision="fp32")
    probs = loaded.predict_proba(saved["text"].tolist())
    np.testing.assert_allclose(probs, saved["prob"].to_numpy(), atol=1e-5)
    # Without the fine-tuned layers (the base encoder alone) the same head predicts otherwise.
    # (The folder's checksums list the layers' file: an unsealed folder loads unchecked.)
    (run / "model" / model_folder.ENCODER_LAYERS).rename(tmp_path / "layers.safetensors")
    (run / "model" / CHECKSUMS).rename(tmp_path / CHECKSUMS)
    base_only = SentimentModel.load(run, device="cpu", precision="fp32")
    assert np.abs(base_only.predict_proba(saved["text"].tolist()) - probs).max() > 1e-4
    # Saving a frozen-encoder model into the folder leaves no fine-tuned layers behind.
    (tmp_path / "layers.safetensors").rename(run / "model" / model_folder.ENCODER_LAYERS)
    (tmp_path / CHECKSUMS).rename(run / "model" / CHECKSUMS)
    head, spec = model_folder.load(run)
    model_folder.save(head, run / "model", spec)
    assert not (run / "model" / model_folder.ENCODER_LAYERS).exists()


def test_frozen_default_keeps_the_homework_model():
    from transformers import BertConfig, BertModel
    assert Config().train_encoder_layers == 0 and Config.from_preset("homework").train_encoder_layers == 0
    bert = BertModel(BertConfig())
    frozen = BERTGRUSentiment(bert, 256, 1, 2, True, 0.25)
    assert count_parameters(frozen) == {"total": 112_241_409, "trainable": 2_759_169}
    assert not frozen.trains_encoder and frozen.encoder_state() == {}
    # All 12 layers (7,087,872 parameters each) train; embeddings and pooler stay frozen.
    full = BERTGRUSentiment(bert, 256, 1, 2, True, 0.25).train_encoder_layers(-1)
    assert count_parameters(full) == {"total": 112_241_409, "trainable": 2_759_169 + 12 * 7_087_872}
    full.train()
    assert not full.bert.embeddings.training and full.bert.encoder.layer[0].training


def test_config_rejects_bad_finetuning_values():
    with pytest.raises(ValueError, match="train_encoder_layers must be -1"):
        Config(train_encoder_layers=-2)
    with pytest.raises(ValueError, match="int8"):
        Config(train_encoder_layers=2, encoder_precision="int8")
    with pytest.raises(ValueError, match="warmup_ratio"):
        Config(warmup_ratio=1.0)
    with pytest.raises(ValueError, match="encoder_attention_dropout"):
        Config(encoder_attention_dropout=1.5)
    encoder, _, _ = encoders.load_encoder("random-tiny")
    with pytest.raises(ValueError, match="'random-tiny' has 2 layers"):
        encoder_layers.first_trained_layer(encoder, 3, "random-tiny")


def test_encoder_schedule_warms_up_then_decays():
    from sentiment.training.optimization import warmup_linear
    f = [warmup_linear(s, 10, 2) for s in range(10)]
    assert f[:2] == [0.5, 1.0] and f[2] == 1.0
    assert all(a > b for a, b in zip(f[2:], f[3:])) and f[-1] > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    from sentiment.training.loop import build_model
    cfg = Config.from_preset("smoke", encoder="random-tiny", train_encoder_layers=-1, hidden_dim=8)
    ids = torch.tensor([[101, 2000, 2001, 102, 0], [101, 2003, 2004, 2005, 102]])
    mask = (ids != 0).long()
    grads = []
    for checkpointing in (False, True):
        encoder, _, _ = encoders.load_encoder("random-tiny")
        model = build_model(cfg.replace(gradient_checkpointing=checkpointing), encoder)
        assert encoder.encoder.layer[0].gradient_checkpointing is checkpointing
        model.train()
        torch.manual_seed(0)
        model(ids, mask).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], msg=n)
