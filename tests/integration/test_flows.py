"""The Prefect flows and tasks under `prefect_test_harness`, on the smoke preset.

Token caching through the task, the training flow end to end (summary, its log lines,
artifacts, registry, tags linking back to the flow run), every branch of the promotion gate
through `promote-sentiment`, a validation failure that stops the run before the token cache
with the registry untouched and nothing persisted, a tiny head sweep with its nested runs, and
the deployment parameters' schema.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

prefect = pytest.importorskip("prefect")
pytest.importorskip("mlflow")
pytest.importorskip("great_expectations")

from sentiment.config import Config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _frame(df: pd.DataFrame, n_pos: int, n_neg: int, seed: int) -> pd.DataFrame:
    pos = df[df.label == 1].sample(n_pos, random_state=seed)
    neg = df[df.label == 0].sample(n_neg, random_state=seed)
    return pd.concat([pos, neg]).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def datasets(imdb_dir, tmp_path_factory):
    """Small IMDB folders. `a` and `b` share the training data; their test splits lean to
    opposite classes, so a barely trained smoke model gets clearly different accuracies on
    them (whichever class it prefers) and the gate has a better and a worse version."""
    root = tmp_path_factory.mktemp("data")
    train = pd.read_parquet(imdb_dir / "train.parquet", columns=["text", "label"])
    test = pd.read_parquet(imdb_dir / "test.parquet", columns=["text", "label"])
    train_small = _frame(train, 50, 50, seed=0)
    out = {}
    for name, (n_pos, n_neg) in {"a": (24, 8), "b": (8, 24)}.items():
        d = root / name
        d.mkdir()
        train_small.to_parquet(d / "train.parquet", index=False)
        _frame(test, n_pos, n_neg, seed=1).to_parquet(d / "test.parquet", index=False)
        out[name] = d
    bad = root / "bad"
    bad.mkdir()
    broken = train_small.copy()
    broken.loc[3, "label"] = 2  # a label outside {0, 1}: a critical expectation fails
    broken.to_parquet(bad / "train.parquet", index=False)
    _frame(test, 16, 16, seed=1).to_parquet(bad / "test.parquet", index=False)
    out["bad"] = bad
    return out


def _params(tmp: Path, data: Path, **kw) -> dict:
    """Smoke-preset flow parameters with every output in tmp."""
    return dict(preset="smoke", data=str(data), run_dir=str(tmp / "run"),
                cache_dir=str(tmp / "cache"), encoder="random-tiny", progress=False,
                num_threads=1, tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", **kw)


def _artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    # Each run's keys end with its own id: the Artifacts page never mixes two runs.
    own = f"-{str(flow_run_id)[:8]}"
    assert all(a.key.endswith(own) for a in arts), [a.key for a in arts]
    return {a.key.removesuffix(own): a for a in arts}


def _logs(flow_run_id) -> list[str]:
    """The flow run's log messages as the Prefect UI shows them (sent to the API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler
    APILogHandler().flush()  # logs go to the API in batches
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def _registry(uri: str):
    import mlflow
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(uri: str, name: str):
    from mlflow.exceptions import MlflowException
    try:
        return int(_registry(uri).get_model_version_by_alias(name, "champion").version)
    except MlflowException:
        return None


# ------------------------------------------------------------------------------------------
def test_token_cache_task_reuses_the_cache_until_length_or_tokenizer_change(harness, datasets,
                                                                        tmp_path):
    from tasks import warm_token_cache
    cfg = Config.from_preset(**_params(tmp_path, datasets["a"]))

    first = warm_token_cache(cfg)
    assert first["cache_hit"] is False
    assert all(Path(s["cache_file"]).exists() for s in first["splits"].values())

    again = warm_token_cache(cfg)
    assert again["cache_hit"] is True
    assert {k: s["fingerprint"] for k, s in again["splits"].items()} == \
        {k: s["fingerprint"] for k, s in first["splits"].items()}

    shorter = warm_token_cache(cfg.replace(max_length=cfg.max_length // 2))
    assert shorter["cache_hit"] is False

    cased = warm_token_cache(cfg.replace(encoder=str(_cased_tokenizer(tmp_path / "cased"))))
    assert cased["cache_hit"] is False
    fingerprints = {s["fingerprint"] for r in (first, shorter, cased)
                    for s in r["splits"].values()}
    assert len(fingerprints) == 3 * len(first["splits"])


def _cased_tokenizer(dest: Path) -> Path:
    """The packaged WordPiece vocab without lower-casing: another tokenizer, same vocab file."""
    from transformers import BertConfig, BertTokenizerFast

    from sentiment.encoding.encoders import load_tokenizer, resolve
    vocab = load_tokenizer(resolve("minilm")).get_vocab()
    dest.mkdir(parents=True)
    (dest / "vocab.txt").write_text(
        "\n".join(t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])) + "\n")
    BertTokenizerFast(vocab_file=str(dest / "vocab.txt"), do_lower_case=False).save_pretrained(dest)
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).to_json_file(dest / "config.json")
    return dest


# ------------------------------------------------------------------------------------------
def test_train_flow_and_every_gate_decision(harness, datasets, tmp_path):
    from prefect.states import State

    from flows.promote import promote_sentiment
    from flows.train import train_sentiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "imdb-sentiment"

    # 1. A full run whose gate refuses: test accuracy below min_accuracy.
    state: State = train_sentiment(**_params(tmp_path, datasets["a"], min_accuracy=1.0),
                                   return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert first["model_version"] == 1 and first["model_name"] == name
    assert first["promotion_ran"] and first["promoted"] is False
    assert "below the minimum" in first["promotion_reason"]
    assert first["champion_version"] is None and _champion(uri, name) is None
    assert first["token_cache_hit"] is False
    assert set(first["stage_seconds"]) == {"validate", "token_cache", "baseline", "train",
                                           "evaluate", "register", "promote"}
    flow_run_id = state.state_details.flow_run_id
    run = _registry(uri).get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == pytest.approx(first["test_accuracy"])
    # The MLflow run links back to the flow run that made it (no deployment here).
    assert run.data.tags["prefect.flow_run_id"] == str(flow_run_id)
    assert run.data.tags["prefect.flow_run_name"]
    assert "prefect.deployment" not in run.data.tags
    assert run.data.tags["prefect.flow_run_url"].endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert run.data.tags["prefect.flow_run_url"].startswith("http")
    # The flow run says what ran: its tags, and the settings the preset resolved.
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        assert {"preset:smoke", "encoder:random-tiny", "model:imdb-sentiment"} <= set(
            client.read_flow_run(flow_run_id).tags)
    # The run's logs, as the Prefect UI shows them, say what came of it, training included.
    logs = _logs(flow_run_id)
    assert any(m.startswith("Epoch: 01 |") for m in logs), logs
    assert f"Test accuracy: {first['test_accuracy']:.4f}" in logs
    assert any(m.startswith(f"Baseline (tfidf) accuracy: {first['baseline_accuracy']:.4f} on the same "
                            f"test set ({first['test_set']})") for m in logs), logs
    assert any(m.startswith(f"Model: {name} version 1 ") for m in logs), logs
    assert f"Promotion: not promoted: {first['promotion_reason']}" in logs
    assert f"MLflow run: {first['mlflow_run_url']}" in logs
    arts = _artifacts(flow_run_id)
    assert {"sentiment-settings", "sentiment-validation", "sentiment-metrics",
            "sentiment-mlflow-run", "sentiment-promotion"} <= set(arts)
    settings = {r["setting"]: r["value"] for r in json.loads(arts["sentiment-settings"].data)}
    assert settings["preset"] == "smoke" and settings["max_train"] == str(run.data.params["max_train"])
    link = arts["sentiment-mlflow-run"].data  # stored as markdown: [text](url)
    link = link[link.index("(") + 1:link.rindex(")")]
    assert link == first["mlflow_run_url"]
    assert link.startswith("http://127.0.0.1:5000/#/experiments/")
    assert link.endswith(f"/runs/{first['run_id']}")
    table = json.loads(arts["sentiment-metrics"].data)
    assert {"metric": "accuracy", "candidate": round(first["test_accuracy"], 4),
            "baseline": round(first["baseline_accuracy"], 4)} in table
    # The baseline is its own MLflow run on the training run's test set.
    base_run = _registry(uri).get_run(first["baseline_run_id"])
    assert base_run.data.tags["role"] == "baseline"
    assert base_run.data.tags["data.test_set"] == first["test_set"]
    assert run.data.tags["data.test_set"] == first["test_set"]
    assert base_run.data.tags["prefect.flow_run_id"] == str(flow_run_id)
    assert "not promoted" in arts["sentiment-promotion"].data
    assert arts["sentiment-validation"].data.strip()
    # Every decision shows the behavioural checks and the slices; the history is published.
    assert any(m.startswith("Behaviour (failed per test type): dir_negative ") and "mft_negation"
               in m for m in logs), [m for m in logs if m.startswith("Behaviour")]
    assert any(m.startswith("Slices (test accuracy): length_q1 ") for m in logs), \
        [m for m in logs if m.startswith("Slices")]
    assert "| test type | candidate failed | champion failed |" in arts["sentiment-promotion"].data
    assert "| slice | candidate | champion | difference |" in arts["sentiment-promotion"].data
    assert "sentiment-champion-history" in arts

    # 2. Same inputs, new seed, gate switched off: the token cache is reused. The MLflow link
    # follows the address the store is served at.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_UI_URL", "http://mlflow.example:8080/")
        state = train_sentiment(**_params(tmp_path, datasets["a"], seed=7, promote=False),
                                return_state=True)
    second = state.result()
    assert second["model_version"] == 2
    assert second["token_cache_hit"] is True
    assert second["promotion_ran"] is False and _champion(uri, name) is None
    assert second["mlflow_run_url"].startswith("http://mlflow.example:8080/#/experiments/")
    assert "Promotion: not gated: promotion switched off" in _logs(state.state_details.flow_run_id)

    # 3. Test data leaning the other way: a version with a different accuracy.
    third = train_sentiment(**_params(tmp_path, datasets["b"], promote=False))
    assert third["model_version"] == 3 and third["token_cache_hit"] is False
    acc = {v["model_version"]: v["test_accuracy"] for v in (first, second, third)}
    worse, better = sorted((1, 3), key=acc.get)
    assert acc[worse] < acc[better], f"need two different accuracies, got {acc}"

    gate = dict(preset="smoke", tracking_uri=uri, model_name=name)
    # 4. No champion yet: a version that clears min_accuracy is promoted.
    d = promote_sentiment(version=worse, min_accuracy=0.0, **gate)
    assert d["promoted"] and "no champion" in d["reason"]
    assert d["champion_before"] is None and _champion(uri, name) == worse

    # 5. Better only on its own test set: the gate scores the champion on the candidate's test
    # set (same training data and seed: the same weights), where it is just as good.
    state = promote_sentiment(version=better, **gate, return_state=True)
    d = state.result()
    assert not d["promoted"] and "does not beat" in d["reason"]
    champ = d["compared"]["champion"]
    assert champ["version"] == worse and champ["rescored"] is True
    assert champ["accuracy"] != pytest.approx(acc[worse])  # not its own test set's number
    assert d["champion_after"]["version"] == worse and _champion(uri, name) == worse
    assert "re-scored" in _artifacts(state.state_details.flow_run_id)["sentiment-promotion"].data
    assert f"Version {better} not promoted: {d['reason']}" in _logs(state.state_details.flow_run_id)

    # 6. Below min_accuracy, even with no comparison to make: the champion stays.
    d = promote_sentiment(version=better, min_accuracy=1.0, **gate)
    assert not d["promoted"] and "below the minimum" in d["reason"]
    assert _champion(uri, name) == worse

    # 7. Default version is the newest; every decision is kept on the version.
    d = promote_sentiment(**gate)
    assert d["candidate"]["version"] == 3
    tags = _registry(uri).get_model_version(name, str(better)).tags
    assert tags["promotion_decision"] == "rejected"  # its latest decision
    assert "does not beat" in tags["promotion.1.reason"] or "below" in tags["promotion.1.reason"]
    assert int(tags["promotion_count"]) >= 2


# ------------------------------------------------------------------------------------------
def test_validation_failure_stops_before_the_token_cache(harness, datasets, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.train import train_sentiment

    params = _params(tmp_path, datasets["bad"])
    state = train_sentiment(**params, return_state=True)
    assert state.is_failed()
    assert "train:label_in_set" in state.message and "critical" in state.message

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    ran = {t.name.rsplit("-", 1)[0] for t in task_runs}
    # The registry probe and the checks before work come first; nothing after validation.
    assert ran == {"probe-registry", "check-before-work", "validate-data"}, ran
    summary = _artifacts(flow_run_id)["sentiment-validation"]
    assert "train:label_in_set" in summary.data and "FAILED" in summary.data

    assert not (Path(params["cache_dir"]) / "tokens").exists()
    assert not (tmp_path / "mlflow.db").exists()  # no run, no registry write
    # Results are not persisted: the failure leaves no pickled exception in PREFECT_HOME.
    storage = harness / "storage"
    assert not storage.exists() or not any(storage.iterdir()), list(storage.iterdir())
    # Called directly (as `sentiment pipeline` does), the flow raises the validation error.
    from sentiment.contract.validation import ValidationError
    with pytest.raises(ValidationError, match="train:label_in_set"):
        train_sentiment(**params)
    assert not storage.exists() or not any(storage.iterdir()), list(storage.iterdir())


def test_tiny_sweep_nests_its_trials_under_one_parent_with_the_table(harness, datasets,
                                                                      tmp_path, monkeypatch):
    """sweep-heads: 3 Optuna trials, each a nested MLflow run under one parent run holding the
    comparison table and plot; the best trial registered, gated and loaded by name."""
    import mlflow
    import optuna

    from flows.sweep import sweep_sentiment
    from sentiment.tracking import sweep_run
    from sentiment.tracking.names import CHAMPION
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(sweep_run.STORAGE_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    s = sweep_sentiment(preset="smoke", data=str(datasets["a"]), run_dir=str(tmp_path / "runs"),
                        cache_dir=str(tmp_path / "cache"), encoder="random-tiny",
                        sweep_trials=3, sweep_heads="gru,cnn,linear_attention",
                        tracking_uri=uri, model_name="sweep-test",
                        overrides={"progress": False, "num_threads": 1, "max_length": 48},
                        promote=True)
    client = mlflow.MlflowClient(uri, uri)
    parent = client.get_run(s["parent_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3 and len(s["rows"]) == 3
    assert {c.data.tags[sweep_run.ROLE] for c in children} == {sweep_run.TRIAL}
    assert all(c.info.experiment_id == parent.info.experiment_id for c in children)
    for c in children:  # each trial logged as a training run is
        assert 0 <= c.data.metrics["test_accuracy"] <= 1 and c.data.metrics["parameters"] > 0
        assert c.data.params["head"] in ("gru", "cnn", "linear_attention")
        assert c.data.metrics["train_tokens_per_s"] > 0
    # The parent holds the comparison table (one row per child) and the plot.
    table = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path=sweep_run.TABLE_ARTIFACT,
        tracking_uri=uri, dst_path=str(tmp_path / "dl"))).read_text())
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    assert sorted(r["run_id"] for r in rows) == sorted(c.info.run_id for c in children)
    assert {"val_accuracy", "test_accuracy", "train_seconds", "train_tokens_per_s",
            "inference_reviews_per_s", "parameters"} <= set(table["columns"])
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {sweep_run.PLOT_ARTIFACT, sweep_run.TABLE_MARKDOWN} <= names
    best = max(rows, key=lambda r: r["val_accuracy"])
    assert parent.data.tags[sweep_run.BEST_RUN_TAG] == best["run_id"]
    # The study is in the tracking database's engine: optuna.db beside the SQLite store.
    study = optuna.load_study(study_name=s["study"], storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 3
    assert {t.user_attrs["run_id"] for t in study.trials} == {r["run_id"] for r in rows}
    # The best trial became a version, went through the gate, and loads by name.
    version = client.get_model_version("sweep-test", str(s["version"]))
    assert version.run_id == best["run_id"]
    assert isinstance(s["decision"], bool)
    target = (f"models:/sweep-test@{CHAMPION}" if s["decision"]
              else f"models:/sweep-test/{s['version']}")
    out = mlflow.pyfunc.load_model(target).predict(
        pd.DataFrame({"text": ["A wonderful film.", "Dull and bad."]}))
    assert list(out.columns) == ["probability", "label"] and out["probability"].between(0, 1).all()


@pytest.mark.parametrize("flow_path", ["flows/train.py:train_sentiment",
                                       "flows/promote.py:promote_sentiment",
                                       "flows/sweep.py:sweep_sentiment"])
def test_deployment_parameters_have_types_defaults_and_descriptions(flow_path):
    """What the Prefect UI shows for a deployment's parameters: each one typed, with its
    default and the description from the flow's docstring (as `prefect deploy` builds it)."""
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    from sentiment.config import PRESETS
    schema = parameter_schema_from_entrypoint(str(REPO / flow_path)).model_dump_for_openapi()
    props = schema["properties"]
    assert len(props) > 5
    for name, p in props.items():
        assert p.get("description"), f"{name} has no description"
        assert "type" in p or "anyOf" in p, f"{name} has no type"
        assert "default" in p, f"{name} has no default"
    assert props["preset"]["default"] == Config.preset
    assert set(props["preset"]["enum"]) == set(PRESETS)
    if "truncation" in props:
        choices = Config.__dataclass_fields__["truncation"].metadata["choices"]
        assert set(props["truncation"]["anyOf"][0]["enum"]) == set(choices)


def test_cli_pipeline_passes_every_override_to_the_flow():
    """`sentiment pipeline` rebuilds exactly the CLI's Config inside the flow."""
    from flows.params import config_from_params, params_for
    from flows.train import train_sentiment
    cfg = Config.from_preset("quick", data="d", encoder="random-tiny", lr=0.01, max_length=99)
    params = params_for(train_sentiment.fn, cfg, promote=False)
    assert params["overrides"] == {"lr": 0.01}  # not a named flow parameter
    assert params["max_length"] == 99 and params["promote"] is False
    assert config_from_params(params) == cfg
    # `overrides` may name a flow parameter too; an empty (None) parameter does not mask it.
    assert config_from_params({"preset": "smoke", "epochs": None,
                               "overrides": {"epochs": 3}}).epochs == 3
    with pytest.raises(ValueError, match="unknown config field"):
        config_from_params({"preset": "smoke", "overrides": {"epoch": 3}})
