"""`sentiment train`: train the model (the GRU head, and the encoder layers the preset trains)
and test its best epoch."""

from __future__ import annotations

import json

from sentiment.config import Config
from sentiment_cli.config_args import DEFAULT_PRESET, add_config_arguments

DESCRIPTION = (
    "Train the GRU head (and the top encoder layers --train-encoder-layers names: the quick and "
    "full presets fine-tune) and test the best epoch (by validation loss). "
    f"Without --preset this is the {DEFAULT_PRESET} preset: the full 17,500 / 7,500 / 25,000 "
    "reviews at 512 tokens, ~46 min on 2 CPU cores; --preset quick takes minutes, --preset "
    "smoke seconds. Each option below shows its default and the presets that change it. "
    "A tracked run (the default) logs everything to MLflow; registering and promoting is "
    "the pipeline's job. Under `torchrun --nproc_per_node N` it trains data-parallel: "
    "--batch-size is the global batch, shared by the N processes; rank 0 writes the run.")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="Train the model, test the best epoch.",
                       description=DESCRIPTION)
    add_config_arguments(p)
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    if cfg.track:
        from sentiment.tracking.training_run import log_evaluation, train_tracked
        res = train_tracked(cfg)
        if res is None:  # a rank other than 0 under torchrun: rank 0 logs and prints
            return 0
        log_evaluation(res["run_id"], res["run_dir"], cfg)
        print(json.dumps({"run_id": res["run_id"], "tracking_uri": res["tracking_uri"],
                          "run_dir": res["run_dir"], "test_accuracy": res["test_accuracy"],
                          "test_f1": res["test_f1"], "best_epoch": res["best_epoch"],
                          "timings": {k: round(v, 1) for k, v in res["timings"].items()}},
                         indent=2))
        return 0
    from sentiment.training.loop import train
    summary = train(cfg)
    if "timings" not in summary:  # a rank other than 0 under torchrun
        return 0
    t = summary["test"]
    print(json.dumps({"run_dir": summary["run_dir"], "test_accuracy": t["accuracy"],
                      "test_f1": t["f1"], "best_epoch": summary["best_epoch"],
                      "timings": {k: round(v, 1) for k, v in summary["timings"].items()}},
                     indent=2))
    return 0
