"""Memory of the served model across large requests: the pyfunc's `predict` (what `mlflow
models serve` runs per request) on `--requests` requests of `--rows` real test reviews each,
with the process's resident size after each request.

    python benchmarks/serving_memory.py --model runs/quick/latest --requests 10 --rows 2000
    python benchmarks/serving_memory.py --model RUN_DIR --no-release   # without giving memory back

The model folder is loaded as the pyfunc loads it (`load_predictor`); the ratio of the resident
size after the last request to that after the first is the number to keep within 1.2.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import machine_info, print_table, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model folder or the run folder holding one")
    ap.add_argument("--data", default=os.environ.get("IMDB_DATA", "../shared/data/imdb"))
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--no-release", action="store_true",
                    help="keep the freed memory (the behaviour before the limits), to compare")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import pandas as pd
    import psutil

    from sentiment.blend.blended_model import load_predictor
    from sentiment.common import memory
    from sentiment.tracking import pyfunc_model
    if args.no_release:
        memory.release_free_memory = lambda: False
    model = pyfunc_model.SentimentPyfunc()
    model.model = load_predictor(args.model, device="cpu")
    test = pd.read_parquet(os.path.join(args.data, "test.parquet"), columns=["text"])
    proc = psutil.Process()
    loaded = proc.memory_info().rss
    rows, rss = [], []
    for i in range(args.requests):
        batch = test.sample(args.rows, random_state=i).reset_index(drop=True)
        t = time.perf_counter()
        out = model.predict(None, batch)
        seconds = time.perf_counter() - t
        assert len(out) == args.rows
        rss.append(proc.memory_info().rss)
        rows.append([i + 1, f"{seconds:.1f}", f"{args.rows / seconds:.1f}", f"{rss[-1] / 1e6:.0f}"])
    print_table(["request", "seconds", "texts/s", "RSS MB"], rows,
                f"{args.requests} requests of {args.rows} texts (RSS after loading: "
                f"{loaded / 1e6:.0f} MB; release: {not args.no_release})")
    ratio = rss[-1] / rss[0]
    print(f"RSS after the last / after the first request: {ratio:.3f} "
          f"(max {max(rss) / rss[0]:.3f})")
    if args.json:
        write_json(args.json, {"machine": machine_info(), "requests": args.requests,
                               "rows": args.rows, "release": not args.no_release,
                               "rss_loaded": loaded, "rss": rss, "ratio_last_first": ratio})


if __name__ == "__main__":
    main()
