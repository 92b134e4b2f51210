"""Bag-of-words baselines on the full IMDB split: TF-IDF + logistic regression (the library's
default settings) against NBSVM (NB log-count ratios + logistic regression) over a small grid,
the NBSVM settings chosen on validation accuracy alone.

    python benchmarks/baseline_models.py                      # 17,500 / 7,500 / 25,000 reviews
    python benchmarks/baseline_models.py --max-train 2000 --max-valid 500 --max-test 1000

Each NBSVM n-gram setting is vectorized once and its C values share that matrix, so a row's
"fit s" is that vectorization + the ratios + its own classifier fit, and "predict s" the test
split's transform + its own product. The chosen setting (and the best 1-3 gram one, if it is
not that) is then fitted end to end with `nbsvm.fit` and timed as the library runs it.
Writes JSON (default benchmarks/results/baseline_models.json) and prints a markdown table.
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


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",")]


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",")]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("IMDB_DATA", str(REPO.parent / "shared" /
                                                                       "data" / "imdb")),
                   help="IMDB folder (default $IMDB_DATA or ../shared/data/imdb).")
    for split in ("train", "valid", "test"):
        p.add_argument(f"--max-{split}", type=int, default=None,
                       help=f"Stratified subset of the {split} split (default: all).")
    p.add_argument("--tokens", type=lambda v: v.split(","), default=["words", "marks"],
                   help="NBSVM token patterns by name (nbsvm.TOKEN_PATTERNS; words,marks).")
    p.add_argument("--ngrams", type=_ints, default=[2, 3], help="NBSVM longest n-grams (2,3).")
    p.add_argument("--max-features", type=_ints, default=[200_000, 1_000_000],
                   help="NBSVM vocabulary caps (200000,1000000).")
    p.add_argument("--c", type=_floats, default=[0.1, 0.3, 1.0, 3.0],
                   help="NBSVM logistic-regression C values (0.1,0.3,1,3).")
    p.add_argument("--alpha", type=_floats, default=[1.0], help="NBSVM smoothing alphas (1).")
    p.add_argument("--min-df", type=int, default=2, help="NBSVM min_df (2).")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                        "baseline_models.json"))
    return p.parse_args(argv)


def cpu_info() -> dict:
    info = {"cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        names = [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.startswith("model name")]
        info.update(model=names[0] if names else None, avx512_bf16="avx512_bf16" in text)
    except OSError:
        pass
    return info


def accuracy(labels, probs) -> float:
    import numpy as np
    return float(((np.asarray(probs) >= 0.5) == np.asarray(labels)).mean())


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def folder_mb(d: Path) -> float:
    return round(sum(p.stat().st_size for p in d.iterdir()) / 1e6, 1)


def run_tfidf(splits, cfg) -> dict:
    from sentiment.baseline import tfidf
    settings = tfidf.settings_from_config(cfg)
    model, fit_s = tfidf.fit(splits.train["text"], splits.train["label"], settings)
    pv, valid_s = timed(model.predict_proba, splits.valid["text"].tolist())
    pt, test_s = timed(model.predict_proba, splits.test["text"].tolist())
    return {"model": "TF-IDF + LR", "tokens": "words", "ngram_max": settings.ngram_max,
            "min_df": settings.min_df,
            "max_features": settings.max_features, "c": settings.c, "alpha": None,
            "n_features": len(model.coef),
            "valid_accuracy": accuracy(splits.valid["label"], pv),
            "test_accuracy": accuracy(splits.test["label"], pt),
            "fit_s": fit_s, "predict_valid_s": valid_s, "predict_test_s": test_s}


def nbsvm_grid(splits, args) -> list[dict]:
    from scipy.special import expit

    from sentiment.baseline import nbsvm
    ytr = splits.train["label"].to_numpy()
    rows = []
    grid = [(tokens, ngram, cap) for tokens in args.tokens for ngram in args.ngrams
            for cap in args.max_features]
    for tokens, ngram, cap in grid:
        pattern = nbsvm.TOKEN_PATTERNS[tokens]
        base = nbsvm.NBSVMSettings(ngram_max=ngram, min_df=args.min_df, max_features=cap,
                                   c=1.0, token_pattern=pattern)
        (vectorizer, x), vec_s = timed(nbsvm.vectorize, splits.train["text"], base)
        xv, valid_tr_s = timed(vectorizer.transform, splits.valid["text"].tolist())
        xt, test_tr_s = timed(vectorizer.transform, splits.test["text"].tolist())
        print(f"{tokens}, 1-{ngram} grams, cap {cap}: {x.shape[1]} features, vectorized in "
              f"{vec_s:.1f} s", flush=True)
        for alpha in args.alpha:
            t = time.perf_counter()
            r = nbsvm.log_count_ratio(x, ytr, alpha)
            xr = nbsvm.scaled(x, r)
            ratio_s = time.perf_counter() - t
            for c in args.c:
                (coef, b), clf_s = timed(nbsvm.fit_classifier, xr, ytr, c)
                settings = nbsvm.NBSVMSettings(ngram_max=ngram, min_df=args.min_df,
                                               max_features=cap, c=c, alpha=alpha,
                                               token_pattern=pattern)
                model = nbsvm.NBSVMModel(settings, vectorizer, r, coef, b)
                zv, valid_mm_s = timed(model.logits, xv)
                zt, test_mm_s = timed(model.logits, xt)
                rows.append({
                    "model": "NBSVM (NB-LR)", "tokens": tokens, "ngram_max": ngram,
                    "min_df": args.min_df, "max_features": cap, "c": c, "alpha": alpha,
                    "n_features": x.shape[1],
                    "valid_accuracy": accuracy(splits.valid["label"], expit(zv)),
                    "test_accuracy": accuracy(splits.test["label"], expit(zt)),
                    "fit_s": vec_s + ratio_s + clf_s, "vectorize_s": vec_s,
                    "ratio_s": ratio_s, "classifier_s": clf_s,
                    "predict_valid_s": valid_tr_s + valid_mm_s,
                    "predict_test_s": test_tr_s + test_mm_s})
                print(f"  alpha {alpha:g} C {c:g}: valid {rows[-1]['valid_accuracy']:.4f} "
                      f"(classifier {clf_s:.1f} s)", flush=True)
        del x, xv, xt, xr
    return rows


def choose(rows: list[dict]) -> dict:
    """The best validation accuracy; ties go to the smaller vocabulary, then the smaller C
    (the stronger L2), i.e. the simpler model."""
    return max(rows, key=lambda r: (r["valid_accuracy"], -r["n_features"], -r["c"]))


def end_to_end(splits, row: dict) -> dict:
    """`nbsvm.fit` and `predict_proba` as the library runs them, plus the saved size."""
    from sentiment.baseline import nbsvm
    settings = nbsvm.NBSVMSettings(ngram_max=row["ngram_max"], min_df=row["min_df"],
                                   max_features=row["max_features"], c=row["c"],
                                   alpha=row["alpha"],
                                   token_pattern=nbsvm.TOKEN_PATTERNS[row["tokens"]])
    model, fit_s = nbsvm.fit(splits.train["text"], splits.train["label"], settings)
    pt, test_s = timed(model.predict_proba, splits.test["text"].tolist())
    with tempfile.TemporaryDirectory() as tmp:
        d, save_s = timed(model.save, Path(tmp) / "nbsvm")
        loaded, load_s = timed(nbsvm.load, d)
        mb = folder_mb(d)
        same = bool((loaded.predict_proba(splits.test["text"].tolist()[:500])
                     == pt[:500]).all())
    return {"settings": {k: row[k] for k in ("tokens", "ngram_max", "min_df", "max_features", "c",
                                             "alpha")},
            "n_features": len(model.coef), "fit_s": fit_s, "predict_test_s": test_s,
            "test_accuracy": accuracy(splits.test["label"], pt), "saved_mb": mb,
            "save_s": save_s, "load_s": load_s, "loaded_predictions_identical": same}


def markdown(rows: list[dict], chosen: dict) -> str:
    out = ["| model | tokens | n-grams | max features | C | alpha | features | valid acc % | "
           "test acc % | fit s | predict test s |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = "**" if r is chosen else ""
        alpha = "" if r["alpha"] is None else f"{r['alpha']:g}"
        out.append(f"| {mark}{r['model']}{mark} | {r['tokens']} | 1-{r['ngram_max']} | "
                   f"{r['max_features']:,} | "
                   f"{r['c']:g} | {alpha} | {r['n_features']:,} | "
                   f"{100 * r['valid_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} | "
                   f"{r['fit_s']:.1f} | {r['predict_test_s']:.1f} |")
    return "\n".join(out)


def main(argv=None) -> dict:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = parse_args(argv)
    from sentiment.config import Config
    from sentiment.data.imdb import load_splits
    cfg = Config(data=args.data, max_train=args.max_train, max_valid=args.max_valid,
                 max_test=args.max_test)
    load_before = loadavg()
    t0 = time.perf_counter()
    splits = load_splits(cfg)
    print(f"splits {splits.sizes()}, cpu {cpu_info()}, load average {load_before}", flush=True)
    tfidf_row = run_tfidf(splits, cfg)
    print(f"TF-IDF: valid {tfidf_row['valid_accuracy']:.4f}, fit {tfidf_row['fit_s']:.1f} s",
          flush=True)
    grid = nbsvm_grid(splits, args)
    chosen = choose(grid)
    fits = {"chosen": end_to_end(splits, chosen)}
    trigram = [r for r in grid if r["ngram_max"] == 3]
    if trigram and chosen["ngram_max"] != 3:
        fits["best_1_3_grams"] = end_to_end(splits, choose(trigram))
    rows = [tfidf_row] + grid
    res = {"splits": splits.sizes(), "data_fingerprint": splits.fingerprint,
           "cpu": cpu_info(), "loadavg_before": load_before, "loadavg_after": loadavg(),
           "seconds": round(time.perf_counter() - t0, 1), "rows": rows,
           "chosen": {k: chosen[k] for k in ("tokens", "ngram_max", "min_df", "max_features", "c",
                                            "alpha", "valid_accuracy", "test_accuracy")},
           "end_to_end": fits}
    print("\n" + markdown(rows, chosen))
    for name, f in fits.items():
        print(f"\n{name} end to end: {f['settings']}, {f['n_features']:,} features, fit "
              f"{f['fit_s']:.1f} s, predict {len(splits.test):,} test reviews "
              f"{f['predict_test_s']:.1f} s, test {100 * f['test_accuracy']:.2f} %, saved "
              f"{f['saved_mb']} MB (load {f['load_s']:.1f} s, identical predictions: "
              f"{f['loaded_predictions_identical']})")
    print(f"\nload average {load_before} -> {res['loadavg_after']}, {res['seconds']} s in all")
    write_json(args.out, res)
    return res


if __name__ == "__main__":
    main()
