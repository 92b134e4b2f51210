"""A folder output scored incrementally, exactly once (``sentiment.scoring.folder`` and
``manifest``), with a stand-in scorer so that only the bookkeeping is under test: three daily
runs over a folder that gains a file a day score each file once; a run killed between writing
a file and recording it, then retried, leaves every row exactly once; two runs at once score
no file twice; an undecodable file is named with its byte offset and, by the setting, stops
the run before scoring or is recorded failed while the others are scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("great_expectations")

REPO = Path(__file__).resolve().parents[2]
CALLS: Counter = Counter()  # text -> times scored, across the runs of one test
_GUARD = threading.Lock()


def fake_submit(delay: float = 0.0, fail_on: str | None = None):
    """A scorer standing in for the model: P(positive) from the text's length; counts calls."""
    from sentiment.scoring.batch import text_error

    def submit(texts):
        def wait():
            if fail_on and any(isinstance(t, str) and t.startswith(fail_on) for t in texts):
                raise RuntimeError("worker lost")
            time.sleep(delay)
            with _GUARD:
                CALLS.update(t for t in texts if isinstance(t, str))
            errors = [text_error(t) for t in texts]
            return {"probability": [None if e else (len(t) % 10) / 10 for t, e in
                                    zip(texts, errors)], "error": errors, "rows": len(texts),
                    "seconds": 0.0, "process": "test", "model_loads": 1}
        return wait
    return submit


def day_file(folder: Path, day: int, rows: int = 7) -> Path:
    texts = [f"day {day} review {i}: the film was {'good' * (i + 1)}" for i in range(rows)]
    path = folder / f"reviews-{day}.parquet"
    pd.DataFrame({"text": texts}).to_parquet(path, index=False)
    return path


def cfg(**kw):
    from sentiment.scoring.config import ScoringConfig
    return ScoringConfig(input="x", output="y", shard_rows=3, **kw)


def job(inp: Path, out: Path, date: str, run_id: str, rescore: bool = False) -> dict:
    from sentiment.scoring.inputs import input_files
    from sentiment.scoring.manifest import Manifest, plan_inputs
    files = [str(f) for f in input_files(inp, allow_empty=True)]
    todo, done = plan_inputs(Manifest(out), files, "v1", rescore)
    return {"output": str(out), "todo": [p.to_dict() for p in todo], "done": done,
            "version_key": "v1", "model_uri": "models:/m/1", "model_version": 1,
            "run_id": run_id, "date": date, "profile": None}


def all_scores(out: Path) -> pd.DataFrame:
    files = sorted(out.glob("date=*/*.parquet"))
    return pd.concat([pd.read_parquet(f).assign(file=f.name) for f in files], ignore_index=True)


def manifest_records(out: Path) -> list[dict]:
    from sentiment.scoring.manifest import Manifest
    return Manifest(out).records()


def test_three_days_each_file_once_then_an_empty_day(tmp_path):
    from sentiment.scoring.folder import score_folder
    CALLS.clear()
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    for day in (1, 2, 3):
        day_file(inp, day)
        j = job(inp, out, f"2026-12-0{day}", f"run{day}")
        assert [Path(p["path"]).name for p in j["todo"]] == [f"reviews-{day}.parquet"]
        s = score_folder(cfg(), j, fake_submit(), report=lambda _: None)
        assert [f["rows"] for f in s["files"]] == [7] and s["rows"] == 7
        assert (out / f"date=2026-12-0{day}").is_dir()
    assert set(CALLS.values()) == {1} and len(CALLS) == 21  # every review scored once
    scores = all_scores(out)
    assert len(scores) == 21 and scores["probability"].notna().all()
    recs = manifest_records(out)
    assert sorted(r["run_id"] for r in recs) == ["run1", "run2", "run3"]
    assert all(r["status"] == "scored" and r["rows"] == 7 and r["model_version"] == 1
               for r in recs)
    # Day 4: nothing new, nothing scored; a renamed copy of a scored file is not new either.
    (inp / "reviews-1.parquet").rename(inp / "renamed.parquet")
    assert job(inp, out, "2026-12-04", "run4")["todo"] == []
    # --rescore with the same version: nothing; with a new version: everything, once.
    assert job(inp, out, "2026-12-04", "run4", rescore=True)["todo"] == []
    j = job(inp, out, "2026-12-04", "run5", rescore=True)
    j["version_key"], j["model_version"] = "v2", 2
    from sentiment.scoring.manifest import Manifest, plan_inputs
    todo, _ = plan_inputs(Manifest(out), [str(f) for f in sorted(inp.iterdir())], "v2", True)
    assert len(todo) == 3


def test_a_crash_mid_run_then_a_retry_scores_every_row_once(tmp_path):
    from sentiment.scoring.folder import score_folder
    CALLS.clear()
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    for day in (1, 2, 3):
        day_file(inp, day)
    # A worker dies on the second file's reviews: the first file is written and recorded.
    with pytest.raises(RuntimeError, match="worker lost"):
        score_folder(cfg(), job(inp, out, "2026-12-01", "crashed"),
                     fake_submit(fail_on="day 2"), report=lambda _: None)
    assert [r["status"] for r in manifest_records(out) if r["status"] == "scored"] == ["scored"]
    s = score_folder(cfg(), job(inp, out, "2026-12-01", "retry"), fake_submit(),
                     report=lambda _: None)
    assert sorted(Path(f["path"]).name for f in s["files"]) == ["reviews-2.parquet",
                                                                 "reviews-3.parquet"]
    scores = all_scores(out)
    assert len(scores) == 21 and scores.groupby("file").size().tolist() == [7, 7, 7]


KILLED = """
import os, sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {repo!r}]
import test_score_incremental as t
from sentiment.scoring import manifest
from sentiment.scoring.folder import score_folder
write = manifest.Manifest.write
def write_then_die(self, record):
    if record["status"] == "scored" and "reviews-2" in record["input"]:
        os._exit(9)  # killed after the output is written, before it is recorded
    return write(self, record)
manifest.Manifest.write = write_then_die
score_folder(t.cfg(), t.job(Path({inp!r}), Path({out!r}), "2026-12-01", "killed"),
             t.fake_submit(), report=print)
"""


def test_killed_between_writing_and_recording_then_retried(tmp_path):
    from sentiment.scoring.folder import score_folder
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    for day in (1, 2, 3):
        day_file(inp, day)
    code = KILLED.format(tests=str(Path(__file__).parent), repo=str(REPO), inp=str(inp),
                         out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 9, proc.stderr[-2000:]
    status = Counter(r["status"] for r in manifest_records(out))
    assert status == {"scored": 1, "claimed": 2}  # file 2 written, not recorded; 3 not begun
    CALLS.clear()
    s = score_folder(cfg(), job(inp, out, "2026-12-02", "retry"), fake_submit(),
                     report=lambda _: None)
    assert [Path(a["path"]).name for a in s["adopted"]] == ["reviews-2.parquet"]
    assert [Path(f["path"]).name for f in s["files"]] == ["reviews-3.parquet"]
    assert sum(CALLS.values()) == 7  # only file 3's reviews scored again
    scores = all_scores(out)
    assert len(scores) == 21 and scores.groupby("file").size().tolist() == [7, 7, 7]
    assert {r["status"] for r in manifest_records(out)} == {"scored"}


def test_two_runs_at_once_score_no_file_twice(tmp_path):
    from sentiment.scoring.folder import score_folder
    CALLS.clear()
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    for day in range(1, 5):
        day_file(inp, day)
    jobs = [job(inp, out, "2026-12-01", f"run{i}") for i in (1, 2)]
    assert len(jobs[0]["todo"]) == len(jobs[1]["todo"]) == 4  # both planned every file
    results, errors = {}, []

    def run(i):
        try:
            results[i] = score_folder(cfg(), jobs[i], fake_submit(delay=0.2),
                                      report=lambda _: None)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    scored = [Path(f["path"]).name for r in results.values() for f in r["files"]]
    assert sorted(scored) == [f"reviews-{d}.parquet" for d in range(1, 5)]  # each once
    assert set(CALLS.values()) == {1} and len(CALLS) == 28
    assert len(all_scores(out)) == 28


def test_an_undecodable_file_is_named_with_its_offset_and_skipped_or_stops(tmp_path):
    from sentiment.scoring.folder import score_folder
    from sentiment.scoring.inputs import ScoringInputError
    CALLS.clear()
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    day_file(inp, 1)
    good = b"text\n" + b"".join(f"a fine review number {i}\n".encode() for i in range(5))
    (inp / "reviews-2.csv").write_bytes(good + b"caf\xe9 latin-1 review\n")
    with pytest.raises(ScoringInputError, match=r"reviews-2\.csv: not UTF-8 at byte offset "
                                                rf"{len(good) + 3}.*on_bad_file=stop"):
        score_folder(cfg(on_bad_file="stop"), job(inp, out, "2026-12-01", "stop"),
                     fake_submit(), report=lambda _: None)
    assert not CALLS and not list(out.glob("date=*/*.parquet"))  # nothing scored
    s = score_folder(cfg(), job(inp, out, "2026-12-01", "skip"), fake_submit(),
                     report=lambda _: None)
    assert [Path(f["path"]).name for f in s["files"]] == ["reviews-1.parquet"]
    assert len(s["failed"]) == 1 and f"byte offset {len(good) + 3}" in s["failed"][0]["error"]
    failed = [r for r in manifest_records(out) if r["status"] == "failed"]
    assert len(failed) == 1 and "reviews-2.csv" in failed[0]["input"]
    # Recorded: the next run does not try it again until its content changes.
    assert job(inp, out, "2026-12-02", "next")["todo"] == []
    (inp / "reviews-2.csv").write_bytes(good)
    assert [Path(p["path"]).name for p in job(inp, out, "2026-12-02", "next")["todo"]] == \
        ["reviews-2.csv"]


def test_a_mostly_blank_file_breaks_the_contract_before_scoring(tmp_path):
    from sentiment.contract.scoring_inputs import ContractBreach
    from sentiment.scoring.folder import score_folder
    CALLS.clear()
    inp, out = tmp_path / "incoming", tmp_path / "scores"
    inp.mkdir()
    pd.DataFrame({"text": ["a real review of a film"] * 2 + [" ", "", None]}).to_parquet(
        inp / "blank.parquet", index=False)
    with pytest.raises(ContractBreach, match=r"at most 50% null, empty or blank texts "
                                             r"\(observed: 60\.0% of 5 texts\)"):
        score_folder(cfg(), job(inp, out, "2026-12-01", "r"), fake_submit(),
                     report=lambda _: None)
    assert not CALLS
    assert json.dumps(manifest_records(out)) == "[]"  # nothing claimed, nothing recorded
