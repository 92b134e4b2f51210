"""A blended model on disk and in memory: the model folder of the encoder + GRU model holds a
``blend/`` folder with the stacker (``stacker.json``) and the bag-of-words model
(``bag_of_words/``: vocabulary JSON, safetensors weights, settings JSON). ``load_predictor``
gives whichever the folder holds, blended or not, with the same ``predict_proba``/``predict``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from sentiment.blend import stacker as stacker_mod
from sentiment.config import DECISION_THRESHOLD

BLEND_DIR = "blend"
BOW_DIR = "bag_of_words"


class BlendedModel:
    """The encoder + GRU model and the bag-of-words model, combined by the stacker."""

    def __init__(self, encoder_model, bow_model, stacker: stacker_mod.Stacker):
        self.encoder_model, self.bow_model, self.stacker = encoder_model, bow_model, stacker

    def parts_proba(self, texts) -> dict[str, np.ndarray]:
        """P(positive) of each part and of the blend, for reports and the gate."""
        texts = list(texts)
        p_enc = np.asarray(self.encoder_model.predict_proba(texts), dtype=np.float64)
        p_bow = np.asarray(self.bow_model.predict_proba(texts), dtype=np.float64)
        return {"encoder": p_enc, "bag_of_words": p_bow, "blend": self.stacker.proba(p_enc, p_bow)}

    def predict_proba(self, texts) -> np.ndarray:
        return self.parts_proba(texts)["blend"]

    def predict(self, texts, threshold: float = DECISION_THRESHOLD) -> list[dict]:
        probs = self.predict_proba(texts)
        return [{"probability": float(p), "label": "pos" if p >= threshold else "neg"}
                for p in probs]


def save_blend(model_dir: str | Path, bow_dir: str | Path, stacker: stacker_mod.Stacker) -> Path:
    """Put the bag-of-words folder and the stacker into `model_dir`/blend (replacing any)."""
    target = Path(model_dir) / BLEND_DIR
    tmp = target.with_name(f".{BLEND_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(bow_dir, tmp / BOW_DIR)
    stacker.save(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def load_predictor(model_dir: str | Path, **encoder_kw):
    """The model a saved folder (or the run folder holding one) describes: a BlendedModel when it
    has a blend, else the SentimentModel. `encoder_kw` go to ``SentimentModel.load``
    (encoder_dir, device, precision, batch_size)."""
    from sentiment.baseline import kinds
    from sentiment.model import model_folder
    from sentiment.model.predict import SentimentModel
    encoder_model = SentimentModel.load(model_dir, **encoder_kw)
    blend = model_folder.locate(model_dir) / BLEND_DIR
    if not blend.is_dir():
        return encoder_model
    return BlendedModel(encoder_model, kinds.load(blend / BOW_DIR), stacker_mod.load(blend))
