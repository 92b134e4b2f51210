"""The model card says what was trained: built from the run's config and the model's own
counts, for a frozen encoder, its top layers and all of it, and for a blend."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.config import Config
from sentiment.data import imdb
from sentiment.encoding import encoders
from sentiment.evaluation.report import model_card
from sentiment.training.loop import build_model, model_facts

METRICS = {"accuracy": 0.9, "f1": 0.9, "n": 10}


@pytest.fixture(scope="module")
def tiny_encoder():
    encoder, _, _ = encoders.load_encoder("random-tiny")
    return encoder


def _numel(modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize("train_layers, trained_layers, words", [
    (0, [], "only the head; the encoder is frozen (none of its 2 layers trained)"),
    (1, [1], "the top 1 of its 2 encoder layers fine-tuned with the head (the lower 1 frozen)"),
    (-1, [0, 1], "all 2 encoder layers fine-tuned with the head"),
])
def test_card_says_what_trained(tiny_encoder, train_layers, trained_layers, words):
    cfg = Config.from_preset("smoke", encoder="random-tiny", train_encoder_layers=train_layers)
    model = build_model(cfg, tiny_encoder)
    summary = {"config": cfg.to_dict(), **model_facts(model), "data_source": "/data/imdb"}
    card = model_card(METRICS, summary)
    # Counted here from the modules themselves, not from the function under test.
    layers = tiny_encoder.encoder.layer
    trainable = _numel([model.head]) + _numel([layers[i] for i in trained_layers])
    total = _numel([model])
    assert f"Trained: {words}" in card
    assert f"{trainable:,} of {total:,} parameters trainable" in card
    assert ("encoder is frozen" in card) == (train_layers == 0)
    assert ("embeddings stay frozen" in card) == (train_layers != 0)
    assert "Blended" not in card
    assert "Source: `/data/imdb`" in card


def test_card_names_the_blend_and_its_parts():
    cfg = Config.from_preset("quick")
    summary = {"config": cfg.to_dict(), "encoder_layers": {"total": 6, "trained": 6},
               "parameters": {"trainable": 100, "total": 400},
               "parts": {"encoder": {"accuracy": 0.87}, "bag_of_words": {"accuracy": 0.91}},
               "blend": {"bag_of_words": {"kind": "nbsvm", "n_features": 123456,
                                          "train_rows": 17500},
                         "stacker": {"n": 750, "encoder_share": 0.42}}}
    card = model_card(METRICS, summary)
    assert "all 6 encoder layers fine-tuned" in card and "100 of 400 parameters" in card
    assert "bag-of-words `nbsvm` model (123,456 n-gram features, trained on 17,500" in card
    assert "fitted on 750 validation reviews (encoder share 0.42)" in card
    assert "encoder alone 0.8700, bag-of-words alone 0.9100" in card


def test_data_source_is_absolute(tmp_path, monkeypatch):
    (tmp_path / "imdb").mkdir()
    monkeypatch.chdir(tmp_path)
    assert imdb.data_source("imdb") == str((tmp_path / "imdb").resolve())
    assert Path(imdb.data_source("./imdb")).is_absolute()
    assert imdb.data_source("stanfordnlp/imdb") == "https://huggingface.co/datasets/stanfordnlp/imdb"
