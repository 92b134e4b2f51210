"""`sentiment evaluate`: test metrics of a trained model on the preset's test split."""

from __future__ import annotations

import json
import time

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments
from sentiment_cli.predict import MODEL_HELP, load_predictor

# The test split depends on the data, the split and the subset; the rest on the model.
OPTIONS = ("data", "split_seed", "train_fraction", "max_test", "device", "eval_batch_size",
           "tracking_uri")


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="Test accuracy and metrics of a trained model.")
    p.add_argument("--model", help=MODEL_HELP)
    add_config_arguments(p, OPTIONS, rename={"eval_batch_size": "batch-size"})
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    from sentiment.data.imdb import load_splits
    from sentiment.evaluation.metrics import classification_metrics
    predictor = load_predictor(cfg, args.model)
    test = load_splits(cfg).test
    t = time.perf_counter()
    probs = predictor.predict_proba(test["text"].tolist())
    m = classification_metrics(test["label"].to_numpy(), probs)
    m["seconds"] = time.perf_counter() - t
    m["reviews_per_s"] = len(test) / m["seconds"]
    print(json.dumps(m, indent=2))
    return 0
