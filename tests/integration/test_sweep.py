"""The head sweep's settings and command line (the tiny sweep through the flow runs with the
other flows, under one Prefect test harness: integration/test_flows.py)."""

from __future__ import annotations

import pytest

prefect = pytest.importorskip("prefect")
pytest.importorskip("mlflow")
pytest.importorskip("optuna")

from sentiment.config import Config  # noqa: E402


def test_sweep_settings_are_checked_in_one_line():
    with pytest.raises(ValueError, match="sweep_heads='gru,rnn'"):
        Config(sweep_heads="gru,rnn")
    with pytest.raises(ValueError, match="sweep_minutes must be > 0"):
        Config(sweep_minutes=0)
    from sentiment.tracking.sweep_run import study_storage
    with pytest.raises(ValueError, match="is not a SQLite file: give the study a database"):
        study_storage(Config(), "http://127.0.0.1:5080")
    assert study_storage(Config(), "sqlite:////x/mlflow.db") == "sqlite:////x/optuna.db"


def test_cli_sweep_rebuilds_its_config_in_the_flow():
    from flows.params import config_from_params, params_for
    from flows.sweep import sweep_sentiment
    from sentiment_cli.config_args import config_from_args
    from sentiment_cli.main import parse
    args = parse(["sweep", "--preset", "quick", "--data", "d", "--sweep-trials", "5",
                  "--sweep-heads", "cnn,gru", "--seed", "7", "--register-best"])
    cfg = config_from_args(args)
    assert (cfg.sweep_trials, cfg.sweep_heads, cfg.seed) == (5, "cnn,gru", 7)
    params = params_for(sweep_sentiment.fn, cfg, register_best=args.register_best,
                        promote=args.promote)
    assert params["overrides"] == {"seed": 7} and params["register_best"] is True
    assert config_from_params(params) == cfg
