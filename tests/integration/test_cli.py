"""The `sentiment` command as a user meets it: each subcommand's help, predicting from stdin,
bad arguments and paths that fail in one line before any server starts, and a whole
`sentiment pipeline` run whose closing lines are commands that work as printed.

Every command runs in a subprocess with a fake HOME, so nothing reaches the user's ~/.prefect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(HOME=str(home), COLUMNS="80", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    # The worktree's packages, whatever the venv has installed in editable mode.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def sentiment(*args: str, home: Path, stdin: str | None = None, cwd: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sentiment_cli.main", *args], input=stdin,
                          capture_output=True, text=True, cwd=cwd or REPO, env=_env(home),
                          timeout=timeout)


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


# --- help ----------------------------------------------------------------------------------

def test_predict_help_fits_one_screen_and_shows_only_its_options(home):
    r = sentiment("predict", "--help", home=home)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 80, r.stdout
    for flag in ("--model", "--file", "--device", "--batch-size", "--tracking-uri", "TEXT"):
        assert flag in r.stdout
    # Preprocessing comes from the saved model; training options are not predict's.
    for flag in ("--max-length", "--epochs", "--lr", "--preset", "--data", "--encoder"):
        assert flag not in r.stdout, flag


def test_train_help_shows_defaults_what_presets_set_and_the_default_preset(home):
    r = sentiment("train", "--help", home=home)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # undo argparse's line wrapping
    assert "--batch-size N Training batch size (reviews). Default: 128 (full: 16, quick: 16, " \
        "smoke: 16)." in text
    assert "Default: 512 (full: 256, quick: 256, smoke: 64)." in text  # --max-length
    assert "Without --preset this is the homework preset" in text and "~46 min" in text
    assert "Default: homework." in text


# --- predict -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_model(imdb_dir, tmp_path_factory) -> Path:
    """A tiny head on a random encoder, trained by `sentiment train` in seconds."""
    tmp = tmp_path_factory.mktemp("smoke-model")
    (tmp / "home").mkdir()
    r = sentiment("train", "--preset", "smoke", "--data", str(imdb_dir), "--encoder", "random-tiny",
                  "--run-dir", str(tmp / "run"), "--cache-dir", str(tmp / "cache"),
                  "--no-track", "--no-progress", "--num-threads", "1", home=tmp / "home")
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "run"


def _rows(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.strip().splitlines()]


def test_predict_reads_texts_from_stdin_and_files(smoke_model, home, tmp_path):
    texts = ["A wonderful, moving film.", "Dull and far too long.", "word " * 20_000]
    stdin = "\n".join(texts[:2]) + "\n\n" + texts[2] + "\n"  # the blank line is skipped

    r = sentiment("predict", "--model", str(smoke_model), "-", home=home, stdin=stdin)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _rows(r.stdout)
    assert [row[2] for row in rows[:2]] == texts[:2]
    assert len(rows) == 3 and len(rows[2][2]) <= 100  # a long review is shown shortened
    for prob, label, _ in rows:
        assert 0 < float(prob) < 1 and label == ("pos" if float(prob) >= 0.5 else "neg")

    f = tmp_path / "reviews.txt"
    f.write_text(stdin, encoding="utf-8")
    by_file = sentiment("predict", "--model", str(smoke_model), "--file", str(f), home=home)
    by_arg = sentiment("predict", "--model", str(smoke_model), *texts, home=home)
    assert by_file.returncode == 0 and by_arg.returncode == 0, by_file.stderr + by_arg.stderr
    assert by_file.stdout == r.stdout == by_arg.stdout


# --- validate ------------------------------------------------------------------------------

def test_validate_exits_0_on_a_pass_and_1_on_a_critical_failure(imdb_dir, home, tmp_path):
    import pandas as pd
    good, bad = tmp_path / "good", tmp_path / "bad"
    for d in (good, bad):
        d.mkdir()
        for split in ("train", "test"):
            df = pd.read_parquet(imdb_dir / f"{split}.parquet").groupby("label").head(20)
            if d == bad and split == "train":
                df.loc[df.index[3], "label"] = 2  # outside {0, 1}: a critical expectation fails
            df.to_parquet(d / f"{split}.parquet", index=False)

    r = sentiment("validate", "--preset", "smoke", "--data", str(good),
                  "--report-dir", str(tmp_path / "report-good"), home=home)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "validation passed" in r.stdout and (tmp_path / "report-good").is_dir()

    r = sentiment("validate", "--preset", "smoke", "--data", str(bad),
                  "--report-dir", str(tmp_path / "report-bad"), home=home)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "validation FAILED" in r.stderr and "train:label_in_set" in r.stderr


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["pipeline", "--data", "/nonexistent"], "--data /nonexistent: does not exist"),
    (["pipeline", "--preset", "huge"], "invalid choice: 'huge'"),
    (["pipeline", "--max-length", "2", "--data", "."], "max_length must be in [3, 512], got 2"),
    (["pipeline", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["validate", "--data", "/nonexistent"], "--data /nonexistent: does not exist"),
    (["train", "--data", "no/such/folder"], "--data no/such/folder: does not exist"),
    (["predict", "--max-length", "64", "hi"], "sentiment predict: error: unrecognized arguments: "
                                              "--max-length"),
    (["predict", "--file", "/nonexistent.txt"], "--file /nonexistent.txt: no such file"),
    (["predict", "-", "and more"], "'-' (read stdin) must be the only TEXT"),
])
def test_bad_arguments_and_paths_fail_in_one_line_before_anything_starts(args, needle, home):
    t = time.monotonic()
    r = sentiment(*args, home=home, stdin="")
    seconds = time.monotonic() - t
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert r.stderr.startswith(f"sentiment {args[0]}: error: ")
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert seconds < 5, f"{seconds:.1f}s"
    assert list(home.iterdir()) == []  # no ~/.prefect, nothing else either


def test_empty_stdin_is_an_error(home):
    r = sentiment("predict", "-", home=home, stdin="\n\n")
    assert r.returncode == 2 and r.stderr == "sentiment predict: error: no text to predict on stdin\n"


# --- the pipeline command ------------------------------------------------------------------

@pytest.mark.slow
def test_pipeline_runs_the_flow_and_prints_commands_that_work(imdb_dir, home, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = sentiment("pipeline", "--preset", "smoke", "--data", str(imdb_dir), "--encoder",
                  "random-tiny", "--run-dir", str(tmp_path / "run"), "--cache-dir",
                  str(tmp_path / "cache"), "--tracking-uri", uri, "--num-threads", "1",
                  "--no-progress", home=home, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "\r" not in r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert "Model: imdb-sentiment version 1, now the champion" in r.stdout
    assert any(line.startswith("Test accuracy: ") for line in out)
    assert any(line.startswith("Baseline (tfidf, ") and ") on the same test set: " in line
               for line in out), r.stdout[-3000:]
    ui = next(line for line in out if line.startswith("MLflow UI: "))
    assert ui.endswith(f"ui --backend-store-uri {uri} --port 5000")
    assert "this run: http://127.0.0.1:5000/#/experiments/" in r.stdout
    # The printed predict command, run as printed (here through this interpreter).
    predict = next(line for line in out if line.startswith("Predict: "))[len("Predict: "):]
    assert predict.startswith(f"MLFLOW_TRACKING_URI={uri} ")
    assert " -m sentiment_cli.main predict --model models:/imdb-sentiment@champion " in predict
    p = subprocess.run(predict, shell=True, capture_output=True, text=True, cwd=tmp_path,
                       env=_env(home), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert _rows(p.stdout)[0][2] == "What a wonderful film!"
    # Prefect's temporary API kept its database in the (fake) home, but no pickled results.
    storage = home / ".prefect" / "storage"
    assert not storage.exists() or not any(storage.iterdir())
