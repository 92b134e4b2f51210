"""Prediction: the homework's ``predict_sentiment`` and a batched model for many texts.

``SentimentModel`` is the one inference path: the CLI, evaluation and the MLflow pyfunc model
all call ``predict_proba``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sentiment.common.checksums import check_folder
from sentiment.common.compute import encoder_autocast, resolve_encoder_precision, select_device
from sentiment.common.texts import checked_texts
from sentiment.config import DECISION_THRESHOLD, default
from sentiment.data.batching import length_sorted_batches, pad_ids
from sentiment.encoding import encoders
from sentiment.encoding.preprocessing import Preprocessing
from sentiment.model import model_folder
from sentiment.model.bert_gru import BERTGRUSentiment
from sentiment.model.inference_head import inference_head

# The homework's two example reviews: what `predict` shows without input, and what a tracked
# run predicts as its examples.
EXAMPLES = ["Justice League is terrible. I hated it.", "Avengers was great!!"]


def predict_sentiment(model: BERTGRUSentiment, tokenizer, text: str,
                      preprocessing: Preprocessing) -> float:
    """P(positive) for one text, as in the homework, tokenized as the model was trained."""
    model.eval()
    device = next(model.head.parameters()).device
    ids = preprocessing.encode(tokenizer, [text])[0]
    tensor = torch.tensor([ids], device=device)
    with torch.inference_mode():
        logits = model(tensor, torch.ones_like(tensor))
    return torch.sigmoid(logits).item()


class SentimentModel:
    """Encoder + tokenizer + trained head (whichever its folder names), with length-sorted
    batched inference."""

    def __init__(self, model: BERTGRUSentiment, tokenizer, preprocessing: Preprocessing,
                 precision: str, batch_size: int):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocessing = preprocessing
        self.precision, self.batch_size = precision, batch_size
        self.device = next(model.head.parameters()).device
        self._encoder = model.bert
        self._head = inference_head(model.head, precision, self.device)
        if precision == "int8":
            self._encoder = torch.ao.quantization.quantize_dynamic(model.bert, {torch.nn.Linear},
                                                                   dtype=torch.qint8)

    @classmethod
    def load(cls, model_dir: str | Path, encoder_dir: str | Path | None = None,
             device: str | None = None, precision: str | None = None,
             batch_size: int | None = None) -> SentimentModel:
        """Load a saved model folder (or the run directory holding one). The base encoder comes
        from `encoder_dir` or the name in its preprocessing spec; a fine-tuned model's trained
        layers (in the folder) go over it. Device, encoder precision and batch size are choices
        of the loading machine; None takes Config's default for each (precision 'auto' resolves
        per device, as in training)."""
        head, spec = model_folder.load(model_dir)
        if encoder_dir:
            check_folder(encoder_dir)  # a registered model's exported encoder records its files
            encoder, tokenizer, _ = encoders.load_encoder(str(encoder_dir))
        else:
            encoder, tokenizer, _ = encoders.load_encoder(spec.encoder, spec.encoder_revision)
        model_folder.load_encoder_layers(model_folder.locate(model_dir), encoder)
        dev = select_device(device or default("device"))
        model = BERTGRUSentiment.with_head(encoder, head)
        model.to(dev)
        prec = resolve_encoder_precision(precision or default("encoder_precision"), dev)
        return cls(model, tokenizer, spec, prec, batch_size or default("eval_batch_size"))

    @torch.inference_mode()
    def predict_proba(self, texts) -> np.ndarray:
        texts = checked_texts(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        ids = self.preprocessing.encode(self.tokenizer, texts)
        lengths = np.array([len(x) for x in ids])
        out = np.zeros(len(texts), dtype=np.float32)
        for idx in length_sorted_batches(lengths, batch_size=self.batch_size):
            batch, mask = pad_ids([ids[i] for i in idx], self.tokenizer.pad_token_id)
            batch, mask = batch.to(self.device), mask.to(self.device)
            with encoder_autocast(self.device, self.precision):
                states = self._encoder(input_ids=batch, attention_mask=mask)[0]
            logits = self._head(states, mask.sum(1))
            out[idx] = torch.sigmoid(logits[:, 0].float()).cpu().numpy()
        return out

    def predict(self, texts, threshold: float = DECISION_THRESHOLD) -> list[dict]:
        probs = self.predict_proba(texts)
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"} for p in probs]

