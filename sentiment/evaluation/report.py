"""Evaluation report files from a run's test predictions: plots, the most confidently wrong
reviews, example predictions and a model card.

Plain files in a folder, no MLflow: ``tracked_run.log_evaluation`` writes them here and logs the
folder, and they stay readable without a tracking server.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment.config import DECISION_THRESHOLD
from sentiment.evaluation.metrics import CALIBRATION_BINS, expected_calibration_error

LABEL_NAMES = ("neg", "pos")

CONFUSION = "confusion_matrix.png"
ROC = "roc_curve.png"
PR = "precision_recall_curve.png"
CALIBRATION = "calibration.png"
CALIBRATION_ERROR = "calibration.json"   # the ECE beside the plot, for a reader without MLflow
WRONG = "confidently_wrong.csv"
EXAMPLES = "example_predictions.json"
CARD = "model_card.md"
COMPARISON = "comparison.png"


def _pyplot():
    import matplotlib
    # Agg before pyplot: training hosts and CI have no display.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return df["label"].to_numpy(np.int64), df["prob"].to_numpy(np.float64)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return path


def plot_confusion_matrix(df: pd.DataFrame, path: Path, threshold: float = DECISION_THRESHOLD) -> Path:
    from sklearn.metrics import confusion_matrix
    plt = _pyplot()
    y, p = _arrays(df)
    cm = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        share = v / max(cm[i].sum(), 1)
        ax.text(j, i, f"{v}\n({share:.1%})", ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], [f"pred {n}" for n in LABEL_NAMES])
    ax.set_yticks([0, 1], [f"true {n}" for n in LABEL_NAMES])
    ax.set_title(f"Confusion matrix (threshold {threshold}, n={len(y)})")
    return _save(plt, fig, path)


def plot_roc(df: pd.DataFrame, path: Path) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve
    plt = _pyplot()
    y, p = _arrays(df)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y, p):.4f}")
    else:
        ax.text(0.5, 0.5, "one class only: ROC undefined", ha="center")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def plot_precision_recall(df: pd.DataFrame, path: Path) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve
    plt = _pyplot()
    y, p = _arrays(df)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if y.sum() > 0:
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=f"AP = {average_precision_score(y, p):.4f}")
    ax.axhline(y.mean(), ls="--", color="grey", lw=1, label=f"base rate {y.mean():.2f}")
    ax.set(xlabel="Recall (pos)", ylabel="Precision (pos)", title="Precision-recall curve",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left")
    return _save(plt, fig, path)


def plot_calibration(df: pd.DataFrame, path: Path, bins: int = 10) -> Path:
    plt = _pyplot()
    y, p = _arrays(df)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    mean_p, frac_pos = [], []
    for b in range(bins):
        m = which == b
        if m.any():
            mean_p.append(p[m].mean())
            frac_pos.append(y[m].mean())
    ece = expected_calibration_error(y, p, bins)
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(4.5, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot(mean_p, frac_pos, "o-", label=f"model (ECE {ece:.3f})")
    ax.set(ylabel="Share positive", title="Calibration (reliability diagram)", ylim=(0, 1.01))
    ax.legend(loc="upper left")
    axh.hist(p, bins=edges, color="tab:blue", alpha=0.7)
    axh.set(xlabel="Predicted P(positive)", ylabel="Reviews", xlim=(0, 1))
    return _save(plt, fig, path)


def plot_comparison(models: list[tuple[str, float]], n: int, test_set: str | None,
                    path: Path) -> Path:
    """Test accuracy of models scored on the same `n` reviews: bars on the whole 0-1 scale
    (nothing exaggerated), and beside them each one's difference from the first model in
    percentage points, on an axis centred on zero (nothing hidden)."""
    plt = _pyplot()
    names = [m for m, _ in models]
    accs = np.array([a for _, a in models], dtype=np.float64)
    diffs = (accs[0] - accs[1:]) * 100
    fig, (ax, axd) = plt.subplots(1, 2, figsize=(9, 1.2 + 0.55 * len(models)), sharey=True,
                                  gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(models))[::-1]
    ax.barh(y, accs, color=["tab:blue"] + ["tab:grey"] * (len(models) - 1))
    for yi, a in zip(y, accs):
        ax.text(min(a, 0.97) - 0.01, yi, f"{a:.4f}", va="center", ha="right", color="white")
    ax.set(xlim=(0, 1), yticks=y, yticklabels=names, xlabel="test accuracy (whole scale)",
           title=(f"Same {n:,} test reviews" if n else "Same test reviews")
           + (f" ({test_set})" if test_set else ""))
    if len(models) > 1:
        yd = y[1:]
        span = max(1.0, float(np.abs(diffs).max()) * 1.3)
        axd.barh(yd, diffs, color=["tab:green" if d > 0 else "tab:red" for d in diffs])
        for yi, d in zip(yd, diffs):
            axd.text(d, yi, f" {d:+.2f} ", va="center", ha="left" if d >= 0 else "right")
        axd.axvline(0, color="black", lw=1)
        axd.tick_params(labelleft=False)
        axd.set(xlim=(-span, span), xlabel="difference (percentage points)",
                title=f"{names[0]} minus each")
    else:
        axd.axis("off")
    return _save(plt, fig, path)


def confidently_wrong(df: pd.DataFrame, n: int = 25, threshold: float = DECISION_THRESHOLD) -> pd.DataFrame:
    """The n misclassified reviews the model was most sure about: where to look for label noise,
    sarcasm and the limits of truncation."""
    pred = (df["prob"].to_numpy() >= threshold).astype(np.int64)
    wrong = df.assign(predicted=pred)[pred != df["label"].to_numpy()]
    # Confidence in the (wrong) predicted class: P(pos) for a 'pos' call, 1 - P(pos) otherwise.
    conf = np.where(wrong["predicted"] == 1, wrong["prob"], 1 - wrong["prob"])
    out = wrong.assign(confidence=conf).sort_values("confidence", ascending=False).head(n)
    return pd.DataFrame({
        "label": [LABEL_NAMES[i] for i in out["label"]],
        "predicted": [LABEL_NAMES[i] for i in out["predicted"]],
        "prob_positive": out["prob"].round(6).to_numpy(),
        "confidence": out["confidence"].round(6).to_numpy(),
        "n_chars": out["text"].str.len().to_numpy(),
        "text": out["text"].to_numpy(),
    })


def _metrics_table(metrics: dict) -> str:
    rows = ["| metric | value |", "|---|---|"]
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "n"):
        if k in metrics:
            v = metrics[k]
            rows.append(f"| {k} | {v if isinstance(v, int) else f'{v:.4f}'} |")
    return "\n".join(rows)


def trained_parts(summary: dict) -> str:
    """What trained, in words, from the run's own counts (``loop.model_facts``) and config:
    a frozen encoder, its top N of L layers, or all of them; trainable of total parameters."""
    cfg = summary.get("config", {})
    layers = summary.get("encoder_layers") or {}
    total, trained = layers.get("total"), layers.get("trained")
    if trained is None:  # a summary without the counts: the config says what was asked
        n = cfg.get("train_encoder_layers", 0)
        trained = total if n == -1 else n
    of = f" of its {total}" if total else ""
    if trained == 0:
        what = f"only the head; the encoder is frozen (none{of} layers trained)"
    elif total is None and cfg.get("train_encoder_layers") == -1:
        what = "all encoder layers fine-tuned with the head"
    elif trained == total:
        what = f"all {total} encoder layers fine-tuned with the head"
    else:
        what = (f"the top {trained}{of} encoder layers fine-tuned with the head"
                + (f" (the lower {total - trained} frozen)" if total else ""))
    if trained != 0:
        what += "; the embeddings stay frozen"
    params = summary.get("parameters") or {}
    if params.get("total"):
        what += (f"; {params['trainable']:,} of {params['total']:,} parameters trainable "
                 f"({params['trainable'] / params['total']:.1%})")
    return what


def _count(n) -> str:
    return "?" if n is None else f"{n:,}"


def blend_parts(summary: dict) -> str | None:
    """A blended model's parts and how they are combined, or None for a model alone."""
    blend = summary.get("blend")
    if not blend:
        return None
    bow, st = blend.get("bag_of_words", {}), blend.get("stacker", {})
    parts = summary.get("parts") or {}
    alone = ", ".join(f"{p.replace('_', '-')} alone {m['accuracy']:.4f}"
                      for p, m in parts.items() if "accuracy" in m)
    return (f"Blended with a bag-of-words `{bow.get('kind', '?')}` model "
            f"({_count(bow.get('n_features'))} n-gram features, trained on "
            f"{_count(bow.get('train_rows'))} training reviews) by a logistic stacker over the "
            f"two logits, fitted on {st.get('n', '?')} validation reviews (encoder share "
            f"{st.get('encoder_share', float('nan')):.2f}); the output is the blend's."
            + (f" Test accuracy of each part: {alone}." if alone else ""))


def head_phrase(cfg: dict) -> str:
    """'a bidirectional 2-layer GRU (hidden 256)', or the other head the run's config names."""
    head, hidden = cfg.get("head", "gru"), cfg.get("hidden_dim", "?")
    if head == "cnn":
        return (f"a CNN ({hidden} filters of each width {cfg.get('cnn_widths', '?')}, "
                "max-over-time pooling)")
    if head == "linformer":
        return (f"a Linformer attention block (width {hidden}, {cfg.get('attention_heads', '?')} "
                f"heads, keys and values projected to {cfg.get('linformer_k', '?')} positions)")
    if head == "linear_attention":
        return (f"a linear-attention block (width {hidden}, {cfg.get('attention_heads', '?')} "
                "heads, phi = elu + 1)")
    return (f"a {'bi' if cfg.get('bidirectional', True) else 'uni'}directional "
            f"{cfg.get('n_layers', '?')}-layer GRU (hidden {hidden})")


def model_card(metrics: dict, summary: dict | None = None, examples: list[dict] | None = None,
               model_name: str | None = None, run_id: str | None = None) -> str:
    """A short markdown model card: what it is, what it was trained and tested on, how well it
    does, what it is for and where it fails. Every statement about training comes from the
    run's summary (its config and counts), none is fixed text."""
    summary = summary or {}
    cfg = summary.get("config", {})
    sizes = summary.get("split_sizes", {})
    enc = cfg.get("encoder", "?")
    blend = blend_parts(summary)
    lines = [
        f"# Model card: {model_name or 'IMDB sentiment'}",
        "",
        "## Model",
        f"- The `{enc}` encoder"
        + (f" (revision `{cfg['encoder_revision']}`)" if cfg.get("encoder_revision") else "")
        + f" feeding {head_phrase(cfg)} and a linear layer; output: P(positive).",
        f"- Trained: {trained_parts(summary)}.",
        *([f"- {blend}"] if blend else []),
        f"- Input: English review text; the first {cfg.get('max_length', '?')} tokens "
        f"([CLS]/[SEP] included) with truncation `{cfg.get('truncation', '?')}`.",
        f"- Weights of epoch {summary.get('best_epoch', '?')} of {cfg.get('epochs', '?')} "
        "(lowest validation loss)."
        + (f" MLflow run `{run_id}`." if run_id else ""),
        "",
        "## Data",
        f"- Source: `{summary.get('data_source') or cfg.get('data', '?')}` (IMDB movie "
        "reviews, Maas et al. 2011), "
        f"fingerprint `{summary.get('data_fingerprint', '?')}`.",
        f"- Splits: train {sizes.get('train', '?')}, validation {sizes.get('valid', '?')} "
        f"(a seeded {cfg.get('train_fraction', 0.7):.0%}/{1 - cfg.get('train_fraction', 0.7):.0%} "
        f"split of IMDB train, seed {cfg.get('split_seed', '?')}), test {sizes.get('test', '?')} "
        "(IMDB test" + (", a stratified subset" if cfg.get("max_test") else "") + ").",
        "- Labels: 0 = negative (rating <= 4/10), 1 = positive (rating >= 7/10); neutral "
        "reviews are not in IMDB.",
        "",
        "## Test metrics (threshold 0.5)",
        _metrics_table(metrics),
        "",
    ]
    if examples:
        lines += ["## Example predictions", "", "| text | P(positive) | label |", "|---|---|---|"]
        lines += [f"| {e['text']} | {e['probability']:.4f} | {e['label']} |" for e in examples]
        lines.append("")
    lines += [
        "## Intended use",
        "- Scoring the polarity of English movie and TV reviews, in batches or one at a time; "
        "comparing models in this project.",
        "- Not for decisions about people, moderation or anything with consequences for "
        "individuals without human review.",
        "",
        "## Limits",
        "- Trained on IMDB only: other domains (products, tweets, support tickets), other "
        "languages and short informal text are out of distribution; expect lower accuracy.",
        "- Binary: there is no neutral class, and mixed reviews are forced to one side. "
        "The probability is not calibrated beyond what the calibration plot shows.",
        "- Long reviews are truncated to the token budget above; a verdict after the cut is "
        "not seen (`head_tail` truncation keeps the end).",
        "- Sarcasm, negation over long spans and plot summaries that describe negative events "
        "in a positive review are typical errors (see `confidently_wrong.csv`).",
        "- IMDB reviews carry the biases of their authors; the model inherits them.",
        "",
    ]
    return "\n".join(lines)


def baseline_card(metrics: dict, what: str, summary: dict, model_name: str | None = None,
                  run_id: str | None = None) -> str:
    """The bag-of-words baseline's model card: `what` it is (``kinds.describe``), its data
    (`summary`: source, fingerprint, test_set, split_sizes) and its test metrics."""
    sizes = summary.get("split_sizes", {})
    return "\n".join([
        f"# Model card: {model_name or 'bag-of-words baseline'}",
        "",
        "## Model",
        f"- {what}; output: P(positive). Plain files (vocabulary, weights), no neural network.",
        "- The promotion gate's bar: a model is promoted only if it beats this one on the same "
        "test set." + (f" MLflow run `{run_id}`." if run_id else ""),
        "",
        "## Data",
        f"- Source: `{summary.get('source', '?')}` (IMDB movie reviews, Maas et al. 2011), "
        f"fingerprint `{summary.get('fingerprint', '?')}`.",
        f"- Trained on {sizes.get('train', '?')} training reviews; tested on {sizes.get('test', '?')}"
        f" (test set `{summary.get('test_set', '?')}`, the model's own test reviews).",
        "",
        "## Test metrics (threshold 0.5)",
        _metrics_table(metrics),
        "",
        "## Limits",
        "- Word n-grams only: word order beyond the n-gram, negation over long spans and "
        "sarcasm are out of its reach (see `confidently_wrong.csv`).",
        "- Trained on IMDB only; other domains and languages are out of distribution.",
        "",
    ])


def write_report(pred_df: pd.DataFrame, out_dir: str | Path, metrics: dict,
                 summary: dict | None = None, examples: list[dict] | None = None,
                 model_name: str | None = None, run_id: str | None = None,
                 n_wrong: int = 25, card: str | None = None) -> dict[str, Path]:
    """Write every report file into out_dir; returns {name: path}. `card`: the model card's
    text (default: ``model_card`` of the encoder model)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "confusion_matrix": plot_confusion_matrix(pred_df, out / CONFUSION),
        "roc_curve": plot_roc(pred_df, out / ROC),
        "precision_recall_curve": plot_precision_recall(pred_df, out / PR),
        "calibration": plot_calibration(pred_df, out / CALIBRATION),
    }
    y, p = _arrays(pred_df)
    (out / CALIBRATION_ERROR).write_text(json.dumps(
        {"ece": expected_calibration_error(y, p), "bins": CALIBRATION_BINS, "n": int(len(y))}))
    files["calibration_error"] = out / CALIBRATION_ERROR
    confidently_wrong(pred_df, n_wrong).to_csv(out / WRONG, index=False)
    files["confidently_wrong"] = out / WRONG
    if examples is not None:
        (out / EXAMPLES).write_text(json.dumps(examples, indent=2))
        files["example_predictions"] = out / EXAMPLES
    if card is None:
        card = model_card(metrics, summary, examples, model_name, run_id)
    (out / CARD).write_text(card)
    files["model_card"] = out / CARD
    return files
