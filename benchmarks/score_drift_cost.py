"""What the checks before scoring cost beside the scoring itself: the data contract and the
drift check (input features against the model's training profile, and the scores against the
validation split's) on N IMDB test reviews, against the `score-reviews` flow's time per review.

    python benchmarks/score_drift_cost.py --check-rows 25000 --score-rows 400

1. Without `--model`, a throwaway model is trained and registered in a temp store: the packaged
   MiniLM at max_length 256 (head+tail), as the quick preset, on 48 reviews (its accuracy is
   beside the point: the cost of scoring and of the checks does not depend on it), profiled
   on the full training split like every registered model.
2. The checks alone on the first `--check-rows` test reviews, in this process: wall and CPU
   seconds.
3. Scoring the first `--score-rows` reviews with the same model in this process, as a worker
   does (``batch.score_shard``, the model loaded once): wall and CPU seconds per review. With
   `--flow`, also the flow (`sentiment score`'s, 1 local worker) on them, into a folder: its
   scoring seconds and the drift seconds it reports.

The drift share of a full run is then checks(check-rows) / (checks(check-rows) + scoring
seconds per review x check-rows), in CPU seconds (on a shared machine wall seconds measure the
other processes too) and in wall seconds. Writes JSON (default
benchmarks/results/score_drift_cost.json).
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

from common import loadavg, write_json  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check-rows", type=int, default=25_000, help="Reviews the checks run on.")
    p.add_argument("--score-rows", type=int, default=400, help="Reviews the flow scores.")
    p.add_argument("--data", default=os.environ.get("IMDB_DATA", str(REPO.parent / "shared" /
                                                                       "data" / "imdb")))
    p.add_argument("--model", default=None, help="MLflow model URI (default: a throwaway one).")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--flow", action="store_true", help="Also run the flow on --score-rows.")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                        "score_drift_cost.json"))
    return p.parse_args(argv)


def throwaway_model(data: str, root: Path) -> tuple[str, str]:
    from sentiment.config import Config
    from sentiment.tracking import registry, training_run
    uri = f"sqlite:///{root}/mlflow.db"
    cfg = Config.from_preset("smoke", data=data, encoder="minilm", max_length=256,
                             truncation="head_tail", run_dir=str(root / "run"),
                             cache_dir=str(root / "cache"), tracking_uri=uri, progress=False,
                             model_name="drift-cost", experiment="drift-cost")
    res = training_run.train_tracked(cfg)
    version = registry.register_model(res["run_id"], res["run_dir"], cfg)["version"]
    return f"models:/drift-cost/{version}", uri


def checks_alone(texts: list, model: str, store: str) -> dict:
    import numpy as np

    from sentiment.scoring import batch
    from sentiment.scoring.checks import (
        checks_before_scoring,
        load_tokenizer,
        with_prediction_drift,
    )
    from sentiment.scoring.config import ScoringConfig
    resolved = batch.resolve_model(model, store)
    profile = batch.model_profile(store, resolved)
    if profile is None:
        raise SystemExit(f"{model} has no training profile")
    tokenizer = load_tokenizer(profile)
    cfg = ScoringConfig(input="-", output="-")
    w, c = time.perf_counter(), time.process_time()
    checks = checks_before_scoring(cfg, texts, profile, tokenizer)
    contract_and_input = (time.perf_counter() - w, time.process_time() - c)
    probs = np.random.default_rng(0).uniform(0, 1, len(texts)).tolist()
    checks = with_prediction_drift(checks, profile, probs, 0.5)
    return {"rows": len(texts), "wall_s": round(time.perf_counter() - w, 2),
            "cpu_s": round(time.process_time() - c, 2),
            "contract_and_input_drift_wall_s": round(contract_and_input[0], 2),
            "drift_wall_s": checks["drift"]["seconds"],
            "drifted": checks["drift"]["input"]["drifted"]}


def scoring_alone(texts: list, model: str, store: str) -> dict:
    from sentiment.scoring import batch
    resolved = batch.resolve_model(model, store)
    batch.score_shard(texts[:8], resolved["model_uri"], store)  # the one model load
    w, c = time.perf_counter(), time.process_time()
    out = batch.score_shard(texts, resolved["model_uri"], store)
    return {"rows": out["rows"], "wall_s": round(time.perf_counter() - w, 2),
            "cpu_s": round(time.process_time() - c, 2)}


def run_flow(texts: list, model: str, store: str, tmp: Path) -> dict:
    import pandas as pd

    from flows.score import score_reviews
    inp = tmp / "incoming"
    inp.mkdir()
    pd.DataFrame({"text": texts}).to_parquet(inp / "reviews.parquet", index=False)
    t = time.perf_counter()
    s = score_reviews(input=str(inp), output=str(tmp / "scores"), model=model,
                      tracking_uri=store, workers=1)
    return {"rows": s["rows"], "seconds": s["seconds"], "wall_s": round(time.perf_counter() - t, 1),
            "drift_s": s["drift"]["seconds"], "drift_line": s["drift_line"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    import pandas as pd
    test = pd.read_parquet(Path(args.data) / "test.parquet", columns=["text"])
    with tempfile.TemporaryDirectory(prefix="drift-cost-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        model, store = (args.model, args.tracking_uri) if args.model else \
            throwaway_model(args.data, tmp)
        setup_s = time.perf_counter() - t
        from sentiment.scoring.config import ScoringConfig
        from sentiment.tracking.store import tracking_uri
        store = store or tracking_uri(ScoringConfig(input="-", output="-"))
        checks = checks_alone(test["text"].iloc[:args.check_rows].tolist(), model, store)
        print("checks alone:", checks, flush=True)
        texts = test["text"].iloc[:args.score_rows].tolist()
        scoring = scoring_alone(texts, model, store)
        print("scoring alone:", scoring, flush=True)
        flow = run_flow(texts, model, store, tmp) if args.flow else None
    result = {
        "model": model if args.model else "throwaway MiniLM, max_length 256 head+tail",
        "setup_s": round(setup_s, 1), "checks": checks, "scoring": scoring, "flow": flow,
        "loadavg": loadavg()}
    for unit in ("cpu_s", "wall_s"):
        full = scoring[unit] / scoring["rows"] * checks["rows"]
        result[f"extrapolated_scoring_{unit}"] = round(full, 1)
        result[f"checks_share_of_run_{unit}"] = round(checks[unit] / (checks[unit] + full), 4)
    print(result)
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
