"""`sentiment` command line: train, evaluate, predict, info, validate, pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .config import Config, add_config_arguments, config_from_args

EXAMPLES = ["Justice League is terrible. I hated it.", "Avengers was great!!"]


def _is_uri(s: str | None) -> bool:
    return bool(s) and s.split(":", 1)[0] in ("models", "runs", "mlflow-artifacts", "file") \
        and ":/" in s


def cmd_train(cfg: Config, args) -> int:
    if cfg.track:
        # A tracked run with every artifact; registering and promoting is the pipeline's job.
        from .tracked_run import log_evaluation, train_tracked
        res = train_tracked(cfg)
        log_evaluation(res["run_id"], res["run_dir"], cfg)
        print(json.dumps({"run_id": res["run_id"], "tracking_uri": res["tracking_uri"],
                          "run_dir": res["run_dir"], "test_accuracy": res["test_accuracy"],
                          "test_f1": res["test_f1"], "best_epoch": res["best_epoch"],
                          "timings": {k: round(v, 1) for k, v in res["timings"].items()}},
                         indent=2))
        return 0
    from .training import train
    summary = train(cfg)
    t = summary["test"]
    print(json.dumps({"run_dir": summary["run_dir"], "test_accuracy": t["accuracy"],
                      "test_f1": t["f1"], "best_epoch": summary["best_epoch"],
                      "timings": {k: round(v, 1) for k, v in summary["timings"].items()}}, indent=2))
    return 0


def _load_predictor(cfg: Config, model: str | None):
    if _is_uri(model):
        from .mlflow_store import tracking_uri
        from .model_uri import load_model_uri
        return load_model_uri(model, tracking_uri(cfg))
    from .predict import SentimentModel
    return SentimentModel.load(model or cfg.run_dir, device=cfg.device,
                               batch_size=cfg.eval_batch_size)


def cmd_predict(cfg: Config, args) -> int:
    texts = args.texts or EXAMPLES
    predictor = _load_predictor(cfg, args.model)
    probs = predictor.predict_proba(texts)
    for text, p in zip(texts, probs):
        print(f"{p:.4f}\t{'pos' if p >= 0.5 else 'neg'}\t{text}")
    return 0


def cmd_evaluate(cfg: Config, args) -> int:
    import time
    from .data import load_splits
    from .metrics import classification_metrics
    predictor = _load_predictor(cfg, args.model)
    test = load_splits(cfg).test
    t = time.perf_counter()
    probs = predictor.predict_proba(test["text"].tolist())
    m = classification_metrics(test["label"].to_numpy(), probs)
    m["seconds"] = time.perf_counter() - t
    m["reviews_per_s"] = len(test) / m["seconds"]
    print(json.dumps(m, indent=2))
    return 0


def cmd_info(cfg: Config, args) -> int:
    from . import encoders
    from .data import load_splits
    from .model import count_parameters
    from .training import build_model
    encoder, tok, spec = encoders.load_encoder(cfg.encoder, cfg.encoder_revision)
    sample = "Hello WORLD how ARE yoU?"
    tokens = tok.tokenize(sample)
    info = {
        "encoder": cfg.encoder, "encoder_location": spec.location,
        "vocab_size": len(tok),
        "special_token_ids": {"cls": tok.cls_token_id, "sep": tok.sep_token_id,
                              "pad": tok.pad_token_id, "unk": tok.unk_token_id},
        "max_input_length": int(min(tok.model_max_length, encoder.config.max_position_embeddings)),
        "example": {"text": sample, "tokens": tokens, "ids": tok.convert_tokens_to_ids(tokens)},
        "parameters": count_parameters(build_model(cfg, encoder)),
    }
    if not args.no_data:
        info["split_sizes"] = load_splits(cfg).sizes()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>18}: {v}")
    return 0


def cmd_validate(cfg: Config, args) -> int:
    from .validation import run_validate_cli
    return run_validate_cli(cfg, cfg.data, args.report_dir)


def cmd_pipeline(cfg: Config, args) -> int:
    import os
    # The ephemeral API's telemetry write races the flow for its SQLite lock and would phone
    # home; a user who wants it sets the variable.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.train import run_pipeline_cli  # the one place the CLI reaches into Prefect
    return run_pipeline_cli(cfg, promote=not args.no_promote)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sentiment", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="Log at INFO level.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("train", help="Train the GRU head on a frozen encoder, test the best epoch.")
    add_config_arguments(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="Test accuracy and metrics of a trained model.")
    s.add_argument("--model", help="Run or model folder, or an MLflow URI (models:/NAME@ALIAS); "
                                   "default: the config's run_dir.")
    add_config_arguments(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("predict", help="P(positive) for each TEXT (default: the homework's examples).")
    s.add_argument("texts", nargs="*", metavar="TEXT")
    s.add_argument("--model", help="Run or model folder, or an MLflow URI (models:/NAME@ALIAS); "
                                   "default: the config's run_dir.")
    add_config_arguments(s)
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("info", help="Tokenizer facts, split sizes and parameter counts.")
    s.add_argument("--json", action="store_true", help="Print JSON.")
    s.add_argument("--no-data", action="store_true", help="Skip loading data (no split sizes).")
    add_config_arguments(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("validate", help="Check the data contract (Great Expectations); exit 1 on "
                                        "a critical failure.")
    s.add_argument("--report-dir", default=None,
                   help="Where the summary, GE results and Data Docs are written "
                        "(default: RUN_DIR/validation).")
    add_config_arguments(s)
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("pipeline", help="Run the Prefect training flow locally (ephemeral API).")
    s.add_argument("--no-promote", action="store_true", help="Register but do not run the gate.")
    add_config_arguments(s)
    s.set_defaults(func=cmd_pipeline)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args)
        return args.func(cfg, args)
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as e:
        # Known failure modes (bad data, unknown encoder, bad config) read as one line, not a trace.
        if args.verbose:
            raise
        print(f"sentiment {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sentiment {args.command}: interrupted; `--resume` continues from the last "
              "checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
