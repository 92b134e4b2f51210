"""Batch-scoring throughput: rows/s of the `score-reviews` flow on N IMDB test reviews with 1 and
2 local Dask workers (or the counts given), each run checked for completeness and input order.

    python benchmarks/score_throughput.py                          # 25,000 reviews, the champion
    python benchmarks/score_throughput.py --rows 300 --blank 3 --model models:/imdb-sentiment/2

rows/s is the flow's own figure: from reading the input to the scores file written, so it
includes starting the local cluster and each worker's one model load. The wall time around the
whole flow call (Prefect start-up, MLflow run, artifact) is recorded beside it. Every run
scores the same reviews; `--blank N` empties N of them, which must come back as N rows with an
error. Writes JSON (default benchmarks/results/score_throughput.json).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import loadavg, print_table, write_json  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=25_000, help="Reviews to score (default 25000).")
    p.add_argument("--data", default=os.environ.get("IMDB_DATA", str(REPO.parent / "shared" /
                                                                       "data" / "imdb")),
                   help="Folder holding test.parquet (default $IMDB_DATA or ../shared/data/imdb).")
    p.add_argument("--workers", default="1,2", help="Comma-separated worker counts (default 1,2).")
    p.add_argument("--model", default=None, help="MLflow model URI (default: the champion).")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: as the "
                                                        "flow's).")
    p.add_argument("--shard-rows", type=int, default=None, help="Reviews per shard (default: "
                                                                "ScoringConfig's).")
    p.add_argument("--blank", type=int, default=0,
                   help="Empty this many reviews (spread over the input): they must come back "
                        "as rows with an error.")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                        "score_throughput.json"))
    return p.parse_args(argv)


def make_input(data: Path, rows: int, blank: int, folder: Path):
    import pandas as pd
    test = pd.read_parquet(data / "test.parquet", columns=["text"])
    if rows > len(test):
        raise SystemExit(f"--rows {rows}: {data / 'test.parquet'} has {len(test)} reviews")
    df = test.iloc[:rows].reset_index(drop=True)
    df.insert(0, "review_id", [f"test-{i:05d}" for i in range(rows)])
    blanks = sorted({round(i * (rows - 1) / max(1, blank - 1)) for i in range(blank)}) \
        if blank else []
    df.loc[blanks, "text"] = ""
    path = folder / "reviews.parquet"
    df.to_parquet(path, index=False)
    return path, df, blanks


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    import pandas as pd

    from flows.score import score_reviews
    from sentiment.scoring.batch import cpu_count
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        path, df, blanks = make_input(Path(args.data), args.rows, args.blank, Path(tmp))
        for workers in counts:
            load_before = loadavg()
            t = time.perf_counter()
            s = score_reviews(input=str(path), output=str(Path(tmp) / f"w{workers}.parquet"),
                              model=args.model, tracking_uri=args.tracking_uri,
                              id_column="review_id", workers=workers,
                              shard_rows=args.shard_rows)
            wall = time.perf_counter() - t
            out = pd.read_parquet(s["output"])
            complete = (len(out) == len(df) and list(out["review_id"]) == list(df["review_id"]))
            errors_at = [int(i) for i in out.index[out["error"].notna()]]
            results.append({
                "workers": workers, "torch_threads_per_worker": max(1, cpu_count() // workers),
                "rows": s["rows"], "errors": s["errors"], "rows_per_s": s["rows_per_s"],
                "flow_seconds": s["seconds"], "wall_seconds": round(wall, 2),
                "shards": s["shards"], "model_loads": s["model_loads"],
                "model_uri": s["model_uri"], "complete_in_order": complete,
                "blank_rows_kept_with_error": errors_at == blanks,
                "loadavg_before": load_before, "loadavg_after": loadavg()})
    print_table(["workers", "rows", "errors", "rows/s", "flow s", "wall s", "complete"],
                [[r["workers"], r["rows"], r["errors"], r["rows_per_s"], r["flow_seconds"],
                  r["wall_seconds"], r["complete_in_order"]] for r in results],
                title=f"score-reviews on {args.rows} IMDB test reviews ({cpu_count()} cores)")
    write_json(args.out, {"rows": args.rows, "blank": args.blank, "cpu_count": cpu_count(),
                          "runs": results})
    return 0 if all(r["complete_in_order"] and r["blank_rows_kept_with_error"]
                    for r in results) else 1


if __name__ == "__main__":  # Dask starts its worker processes by re-importing this module
    sys.exit(main())
