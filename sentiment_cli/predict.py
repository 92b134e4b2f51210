"""`sentiment predict`: P(positive) for texts from arguments, a file or stdin."""

from __future__ import annotations

from typing import Optional

from sentiment.config import DECISION_THRESHOLD, Config
from sentiment_cli.config_args import add_config_arguments
from sentiment_cli.inputs import read_texts

MODEL_HELP = ("Run or model folder, or an MLflow URI such as models:/imdb-sentiment@champion. "
              f"Default: {Config.run_dir}.")
# What predict needs from Config; preprocessing (max length, truncation) comes from the model.
OPTIONS = ("device", "eval_batch_size", "tracking_uri")
SHOWN_CHARS = 100


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="P(positive) for each TEXT, line of --file, or line of stdin.",
        description="Print P(positive), label and text, one line per text (default: the "
                    "homework's two examples).")
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="Texts to score; '-' reads stdin, one text per line.")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--file", metavar="PATH",
                   help="Read texts from PATH ('-': stdin), one per line.")
    add_config_arguments(p, OPTIONS, preset=False, rename={"eval_batch_size": "batch-size"})
    p.set_defaults(run=run)


def load_predictor(cfg: Config, model: Optional[str]):
    """A trained model with `predict_proba(texts)`: from a folder, or from MLflow by URI."""
    from sentiment.tracking.model_uri import is_model_uri
    if is_model_uri(model):
        from sentiment.tracking.model_uri import load_model_uri
        from sentiment.tracking.store import tracking_uri
        return load_model_uri(model, tracking_uri(cfg), cfg.probe_timeout_s)
    from sentiment.blend.blended_model import load_predictor as load_folder
    return load_folder(model or cfg.run_dir, device=cfg.device, batch_size=cfg.eval_batch_size)


def _shown(text: str) -> str:
    text = " ".join(text.split())  # a tab or newline would break the columns
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def run(cfg: Config, args) -> int:
    texts = read_texts(args.texts, args.file)  # before the heavy imports: a typo fails fast
    if texts is None:
        from sentiment.model.predict import EXAMPLES
        texts = EXAMPLES
    probs = load_predictor(cfg, args.model).predict_proba(texts)
    for text, p in zip(texts, probs):
        print(f"{p:.4f}\t{'pos' if p >= DECISION_THRESHOLD else 'neg'}\t{_shown(text)}")
    return 0
