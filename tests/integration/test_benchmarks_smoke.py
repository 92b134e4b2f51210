"""The benchmark entry point still runs end to end (tiny size, random-tiny encoder, synthetic
reviews) and writes the JSON keys `make bench-quick` promises. Seconds, not a measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def _reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pos, neg = ["great", "wonderful", "loved"], ["awful", "boring", "hated"]
    filler = "the movie film plot actor scene story was and a of it this".split()
    rows = []
    for i in range(n):
        words = list(rng.choice(filler + (pos if i % 2 else neg) * 2, int(rng.integers(5, 40))))
        rows.append((" ".join(words), i % 2))
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.mark.timeout(120)
def test_bench_tiny_writes_headline_keys(tmp_path):
    data = tmp_path / "imdb"
    data.mkdir()
    _reviews(120, 0).to_parquet(data / "train.parquet")
    _reviews(60, 1).to_parquet(data / "test.parquet")
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--size", "tiny",
           "--encoder", "random-tiny", "--data", str(data), "--device", "cpu",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    for key in ("train_speedup", "cache_hit_speedup", "predict_speedup",
                "homework_test_accuracy", "ours_test_accuracy", "ours_warm_test_accuracy",
                "predict_accuracy", "predict_baseline_accuracy", "cache_mb_per_1000_reviews"):
        assert isinstance(res[key], float) and np.isfinite(res[key]), key
    assert res["train"]["ours_warm"]["state_cache"]["train"]["hit"] is True
    assert res["train"]["ours_cold"]["state_cache"]["train"]["hit"] is False
    assert set(res["encoder"]["precisions"]) == {"fp32", "bf16", "int8"}
    assert res["tokenize"]["identical_ids"] == 1.0
    assert set(res["truncation"]) >= {"head", "head_tail"}
    assert "Summary" in proc.stdout
