"""Prediction: the homework's ``predict_sentiment`` and a batched model for many texts.

``SentimentModel`` is the one inference path: the CLI, evaluation and the MLflow pyfunc model
all call ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import encoders
from .batching import length_sorted_batches, pad_ids
from .model import HEAD_CONFIG, BERTGRUSentiment, load_head
from .state_cache import encoder_autocast
from .tokenization import encode_texts
from .utils import resolve_encoder_precision, select_device

# The homework's two example sentences: the CLI's default input and the tracked run's examples.
EXAMPLES = ["Justice League is terrible. I hated it.", "Avengers was great!!"]


def predict_sentiment(model: BERTGRUSentiment, tokenizer, text: str, max_length: int = 512,
                      truncation: str = "head") -> float:
    """P(positive) for one text, as in the homework."""
    model.eval()
    device = next(model.head.parameters()).device
    ids = encode_texts(tokenizer, [text], max_length, truncation)[0]
    tensor = torch.tensor([ids], device=device)
    with torch.inference_mode():
        logits = model(tensor, torch.ones_like(tensor))
    return torch.sigmoid(logits).item()


class SentimentModel:
    """Encoder + tokenizer + trained head, with length-sorted batched inference."""

    def __init__(self, model: BERTGRUSentiment, tokenizer, max_length: int = 512,
                 truncation: str = "head", precision: str = "fp32", batch_size: int = 64,
                 meta: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length, self.truncation = max_length, truncation
        self.precision, self.batch_size = precision, batch_size
        self.device = next(model.head.parameters()).device
        self.meta = meta or {}
        self._encoder = model.bert
        if precision == "int8":
            self._encoder = torch.ao.quantization.quantize_dynamic(model.bert, {torch.nn.Linear},
                                                                   dtype=torch.qint8)

    @classmethod
    def load(cls, model_dir: str | Path, encoder_dir: str | Path | None = None, device: str = "auto",
             precision: str | None = None, batch_size: int = 64) -> "SentimentModel":
        """Load a saved head; the encoder comes from `encoder_dir` or the name it was trained with."""
        model_dir = Path(model_dir)
        if (model_dir / "model" / HEAD_CONFIG).exists():  # a run directory was given
            model_dir = model_dir / "model"
        head, meta = load_head(model_dir)
        enc_name = str(encoder_dir) if encoder_dir else meta["encoder"]
        encoder, tokenizer, _ = encoders.load_encoder(enc_name, None if encoder_dir else meta.get("encoder_revision"))
        dev = select_device(device)
        model = BERTGRUSentiment(encoder, head.config.hidden_dim, head.config.output_dim,
                                 head.config.n_layers, head.config.bidirectional, head.config.dropout)
        model.head = head
        model.to(dev)
        prec = resolve_encoder_precision(precision or meta.get("encoder_precision", "auto"), dev)
        return cls(model, tokenizer, meta.get("max_length", 512), meta.get("truncation", "head"),
                   prec, batch_size, meta)

    @torch.inference_mode()
    def predict_proba(self, texts) -> np.ndarray:
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; item(s) {bad[:5]} are not")
        if not texts:
            return np.zeros(0, dtype=np.float32)
        ids = encode_texts(self.tokenizer, texts, self.max_length, self.truncation)
        lengths = np.array([len(x) for x in ids])
        out = np.zeros(len(texts), dtype=np.float32)
        for idx in length_sorted_batches(lengths, batch_size=self.batch_size):
            batch, mask = pad_ids([ids[i] for i in idx], self.tokenizer.pad_token_id)
            batch, mask = batch.to(self.device), mask.to(self.device)
            with encoder_autocast(self.device, self.precision):
                states = self._encoder(input_ids=batch, attention_mask=mask)[0]
            logits = self.model.head(states.to(self.model.head.out.weight.dtype), mask.sum(1))
            out[idx] = torch.sigmoid(logits[:, 0].float()).cpu().numpy()
        return out

    def predict(self, texts, threshold: float = 0.5) -> list[dict]:
        probs = self.predict_proba(texts)
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"} for p in probs]

