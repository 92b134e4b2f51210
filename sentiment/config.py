"""The one typed configuration object and its presets.

Every default lives here. Flows, tasks, the CLI and the library's own constructors take their
defaults from ``Config`` (``default(name)``); nothing downstream invents its own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any, Optional

# P(positive) at or above which a review is labelled positive: metrics, reports, predictions
# and scores all cut here unless a caller passes another threshold.
DECISION_THRESHOLD = 0.5
# The heads a model can have (sentiment.model.heads builds each); attention heads need
# hidden_dim to split evenly over attention_heads.
HEAD_NAMES = ("gru", "cnn", "linformer", "linear_attention")
ATTENTION_HEADS = ("linformer", "linear_attention")


def _f(default: Any, help: str, choices: Optional[tuple] = None, resume: bool = False) -> Any:
    """A field with its help text; `resume=True` marks a field that changes what a run
    computes, so a checkpoint made under another value cannot be resumed."""
    meta: dict = {"help": help, "resume": resume}
    if choices:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """One flat dataclass (flows and the CLI map its fields one to one), grouped by concern.
    Its defaults are the homework's spec; presets (below) change only what they name."""

    # --- run identity -------------------------------------------------------------------
    preset: str = _f("homework", "Name of the preset these values started from.",
                     ("smoke", "quick", "full", "homework"))
    run_dir: str = _f("runs/homework", "Folder of the run: checkpoints, the final model and "
                                       "reports. Left at the preset's value (runs/<preset>), each "
                                       "run creates its own folder in it, runs/<preset>/"
                                       "<YYYYmmdd-HHMMSS>-<6 hex>, and runs/<preset>/latest points "
                                       "at the newest finished one; any other folder is used as "
                                       "given, by one run at a time (--resume needs it).")

    # --- data: source, split and subsets ------------------------------------------------
    data: str = _f("stanfordnlp/imdb",
                   "IMDB source: a folder of train/test parquet files, an aclImdb/ folder or "
                   ".tar.gz, or a Hugging Face Hub dataset id.", resume=True)
    split_seed: int = _f(1234, "Seed of the train/validation split.", resume=True)
    train_fraction: float = _f(0.7, "Share of the original train split kept for training; "
                                    "the rest is the validation split.", resume=True)
    max_train: Optional[int] = _f(None, "Stratified subset size of the training split (None: all).",
                                  resume=True)
    max_valid: Optional[int] = _f(None, "Stratified subset size of the validation split (None: all).",
                                  resume=True)
    max_test: Optional[int] = _f(None, "Stratified subset size of the test split (None: all).",
                                 resume=True)

    # --- preprocessing: encoder and tokens (saved beside the model as preprocessing.json) --
    encoder: str = _f("minilm", "Encoder: 'minilm' (packaged all-MiniLM-L6-v2, offline), "
                                "a Hugging Face Hub id (e.g. bert-base-uncased) or a local path.",
                      resume=True)
    encoder_revision: Optional[str] = _f(None, "Hub revision (branch, tag or commit) of the encoder.",
                                         resume=True)
    max_length: int = _f(512, "Maximum encoder input length in tokens, [CLS] and [SEP] included.",
                         resume=True)
    truncation: str = _f("head", "Which tokens of a long review are kept: 'head' (the first "
                                 "max_length-2, as in the homework) or 'head_tail' "
                                 "(its start and its end).", ("head", "head_tail"), resume=True)

    # --- model head: architecture (saved beside the model as head_config.json) ----------
    head: str = _f("gru", "The head on the encoder's states: 'gru' (the homework's bidirectional "
                          "GRU), 'cnn' (Kim 2014: several filter widths, max-over-time pooling), "
                          "'linformer' (attention with keys and values projected to "
                          "linformer_k positions) or 'linear_attention' (kernelised attention, "
                          "phi = elu + 1, linear in the length). Each ends in the same logit.",
                   HEAD_NAMES, resume=True)
    hidden_dim: int = _f(256, "GRU hidden size per direction; the CNN head's feature maps per "
                              "filter width; the attention heads' model width.", resume=True)
    output_dim: int = _f(1, "Number of output logits (1: binary with BCEWithLogitsLoss).",
                         resume=True)
    n_layers: int = _f(2, "Number of stacked GRU layers.", resume=True)
    bidirectional: bool = _f(True, "Run the GRU in both directions.", resume=True)
    dropout: float = _f(0.25, "Dropout between GRU layers and before the linear layer (the "
                              "other heads: before their linear layer, and on the attention "
                              "heads' residual branches).", resume=True)
    cnn_widths: str = _f("3,4,5", "CNN head: filter widths in tokens, comma-separated (Kim "
                                  "2014's 3,4,5).", resume=True)
    attention_heads: int = _f(4, "Linformer and linear-attention heads: attention heads "
                                 "(hidden_dim must be a multiple of it).", resume=True)
    linformer_k: int = _f(64, "Linformer head: positions the keys and values are projected to "
                              "(its projection spans max_length positions).", resume=True)

    # --- optimisation -------------------------------------------------------------------
    epochs: int = _f(2, "Training epochs.")
    batch_size: int = _f(128, "Training batch size (reviews).", resume=True)
    # On a CPU, 64 reviews per pass score ~18% more tokens per CPU-second than 256 (whose
    # attention scores take ~0.8 GB per layer at 256 tokens); a GPU may want more.
    eval_batch_size: int = _f(64, "Batch size for validation, test and prediction.")
    bucket_batches: bool = _f(True, "Length-bucketed training batches (as torchtext's BucketIterator); "
                                    "off: random batches padded to their longest review.",
                              resume=True)
    lr: float = _f(1e-3, "Adam learning rate.", resume=True)
    seed: int = _f(1234, "Seed for weights, dropout and batch order.", resume=True)
    # Encoder fine-tuning (0 keeps the homework's frozen encoder and its parameter counts).
    train_encoder_layers: int = _f(0, "Encoder layers that train: 0 = frozen encoder (the "
                                      "homework's model); N = the top N transformer layers; -1 = "
                                      "all layers. The embeddings stay frozen.", resume=True)
    encoder_lr: float = _f(5e-5, "AdamW peak learning rate of the trained encoder layers (the "
                                 "head keeps Adam at lr).", resume=True)
    encoder_weight_decay: float = _f(0.01, "AdamW decoupled weight decay of the trained encoder "
                                           "layers (biases and LayerNorm weights excluded).",
                                     resume=True)
    warmup_ratio: float = _f(0.1, "Share of all training steps over which the encoder's learning "
                                  "rate rises linearly from 0; it then decays linearly to 0.",
                             resume=True)
    encoder_attention_dropout: Optional[float] = _f(
        None, "Attention-probability dropout of the encoder (None: the encoder's own, 0.1 for "
              "BERT-family models); 0 makes fine-tuning on the CPU about 1.4x faster (SDPA's "
              "fused kernel).", resume=True)
    gradient_checkpointing: bool = _f(False, "Recompute the trained encoder layers' activations in "
                                             "the backward pass: less memory for long inputs on a "
                                             "GPU, about a third more compute.")

    # --- compute: device, precision, caches ---------------------------------------------
    device: str = _f("auto", "Device: 'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'.")
    num_threads: Optional[int] = _f(None, "CPU threads for torch (None: torch's default).")
    encoder_precision: str = _f("auto", "Precision of encoder passes: 'auto' (bf16 on CUDA and on "
                                        "CPUs with native bf16, i.e. AVX-512 BF16 or AMX; fp32 "
                                        "otherwise), 'fp32', 'bf16' or 'int8' (CPU dynamic "
                                        "quantization).", ("auto", "fp32", "bf16", "int8"),
                                resume=True)
    cache_states: bool = _f(True, "Cache the frozen encoder's outputs once and train the head from "
                                  "the cache; when the top encoder layers train, cache the states "
                                  "entering the first trained layer (the frozen layers run once). "
                                  "Off: the encoder runs on every batch, with its dropout active "
                                  "in training, exactly as in the homework.",
                            resume=True)
    cache_dir: str = _f("cache", "Directory for the tokenization and encoder-state caches.")
    rebuild_damaged_caches: bool = _f(True, "A cache entry that fails its checksum or shape "
                                            "check is reported, removed and built again; off: "
                                            "the run stops there, before training.")

    # --- run control --------------------------------------------------------------------
    resume: bool = _f(False, "Continue an interrupted run from the last checkpoint in run_dir.")
    progress: bool = _f(True, "Show progress: tqdm bars on a terminal, otherwise a plain line "
                              "about every 30 s.")

    # --- data contract ------------------------------------------------------------------
    min_rows: int = _f(1000, "Minimum number of rows in each data split file.")
    min_text_chars: int = _f(1, "Minimum review length in characters (after stripping).")
    max_text_chars: int = _f(100_000, "Maximum review length in characters.")
    balance_low: float = _f(0.4, "Warn when the positive share of a split falls below this.")
    balance_high: float = _f(0.6, "Warn when the positive share of a split rises above this.")

    # --- head sweep (`sentiment sweep`: heads compared on one frozen-encoder pass) --------
    sweep_heads: str = _f(",".join(HEAD_NAMES),
                          "Sweep: the heads it searches over, comma-separated.")
    sweep_trials: int = _f(12, "Sweep budget: trials this sweep runs (its study may hold "
                               "earlier ones).")
    sweep_minutes: Optional[float] = _f(None, "Sweep budget: no new trial starts after this many "
                                              "minutes (None: no time limit).")
    sweep_study: Optional[str] = _f(None, "Sweep: the Optuna study's name; sweeps of one name "
                                          "share their trials (None: '<preset>-heads-<data "
                                          "fingerprint>').")
    sweep_storage: Optional[str] = _f(None, "Sweep: the Optuna study's database URL (None: "
                                            "$SENTIMENT_SWEEP_STORAGE, else optuna.db beside "
                                            "a SQLite tracking store; a tracking server needs "
                                            "one, e.g. server mode's PostgreSQL database).")

    # --- tracking & registry ------------------------------------------------------------
    track: bool = _f(True, "Log the run to MLflow (needs the 'pipeline' extra); --no-track trains "
                           "with torch and transformers alone.")
    tracking_uri: Optional[str] = _f(None, "MLflow tracking URI (None: $MLFLOW_TRACKING_URI or the "
                                           "local SQLite store under mlflow/).")
    experiment: str = _f("imdb-sentiment", "MLflow experiment name.")
    model_name: str = _f("imdb-sentiment", "Registered model name in the MLflow registry.")
    min_accuracy: float = _f(0.85, "Promotion gate: minimum test accuracy for the champion alias.")
    min_improvement: float = _f(0.0, "Promotion gate: minimum test-accuracy gain over the "
                                     "champion on the candidate's test set; 0 means strictly "
                                     "better, a negative margin tolerates that much loss.")
    min_lift_over_baseline: float = _f(0.0, "Promotion gate: minimum test-accuracy gain over the "
                                            "bag-of-words baseline tested on the candidate's test "
                                            "set; 0 means strictly better, a negative margin "
                                            "tolerates that much loss, -1 switches the rule off "
                                            "(no baseline needed).")
    max_behaviour_failure_rate: float = _f(1.0, "Promotion gate: the largest share of the cases of "
                                                "any one behavioural test type (negation, "
                                                "contrast, swapped names, ...; "
                                                "sentiment/behaviour/suite) a candidate may "
                                                "fail; 1 switches the rule off.")
    max_slice_loss: float = _f(1.0, "Promotion gate: the largest test-accuracy loss against the "
                                    "champion allowed on the candidate's worst slice of the "
                                    "test set (length quartiles, cut reviews, negation, "
                                    "contrast); 1 switches the rule off.")
    tracking_timeout_s: int = _f(30, "Connect and read timeout (seconds) of each request to an "
                                     "HTTP tracking server (MLFLOW_HTTP_REQUEST_TIMEOUT when the "
                                     "environment does not set it).")
    tracking_max_retries: int = _f(2, "Retries of a failed request to an HTTP tracking server "
                                      "(MLFLOW_HTTP_REQUEST_MAX_RETRIES when the environment does "
                                      "not set it).")
    tracking_outage_s: float = _f(120.0, "Seconds metric logging may keep failing (points kept "
                                         "and re-sent) before training stops at its next "
                                         "checkpoint; --resume re-sends what the server never "
                                         "received.")
    probe_timeout_s: float = _f(5.0, "Seconds the registry probe waits for the tracking store "
                                     "before any work starts.")
    promotion_lock_timeout_s: float = _f(120.0, "Seconds a promotion waits for another promotion "
                                                "of the same model to finish.")

    # --- bag-of-words baseline (the model a champion must beat) --------------------------
    baseline_kind: str = _f("tfidf", "Baseline model: 'tfidf' (TF-IDF word n-grams + logistic "
                                     "regression, the baseline_* fields) or 'nbsvm' (binarized "
                                     "word n-grams scaled by Naive Bayes log-count ratios + "
                                     "logistic regression, the baseline_nb_* fields).",
                            ("tfidf", "nbsvm"))
    baseline_ngram_max: int = _f(2, "Baseline TF-IDF: longest word n-gram (1: words only, "
                                    "2: and word pairs).")
    baseline_min_df: int = _f(2, "Baseline TF-IDF: drop n-grams seen in fewer training reviews.")
    baseline_max_features: int = _f(200_000, "Baseline TF-IDF: keep the most frequent n-grams.")
    # 8 was the best of 1, 2, 4, 8, 16 on the full validation split (benchmarks/README.md).
    baseline_c: float = _f(8.0, "Baseline logistic regression: inverse L2 strength (C).")
    # NBSVM: 'marks' tokens, 1-3 grams (all 687,963 found in 2+ training reviews), C 0.3 and
    # alpha 1 were the best of 32 settings on the full validation split (benchmarks/README.md).
    baseline_nb_tokens: str = _f("marks", "Baseline NBSVM tokens: 'words' (two or more letters "
                                          "or digits, as TF-IDF's) or 'marks' (also one-letter "
                                          "words and the marks ! and ?).", ("words", "marks"))
    baseline_nb_ngram_max: int = _f(3, "Baseline NBSVM: longest word n-gram.")
    baseline_nb_min_df: int = _f(2, "Baseline NBSVM: drop n-grams seen in fewer training reviews.")
    baseline_nb_max_features: int = _f(1_000_000, "Baseline NBSVM: keep the most frequent n-grams.")
    baseline_nb_c: float = _f(0.3, "Baseline NBSVM logistic regression: inverse L2 strength (C).")
    baseline_nb_alpha: float = _f(1.0, "Baseline NBSVM: count added to every n-gram's positive and "
                                        "negative review counts before their log ratio.")
    baseline_max_train: Optional[int] = _f(None, "Training reviews of the bag-of-words model: a "
                                                 "stratified subset of the training split (None: "
                                                 "all of it, whatever max_train says; it costs "
                                                 "seconds). Validation and test reviews are the "
                                                 "model's.", resume=True)
    blend: bool = _f(False, "Register the trained model blended with the bag-of-words model: a "
                            "logistic stacker over their two logits, fitted on the validation "
                            "split only, saved in the model folder (plain files). The run logs "
                            "each part's test metrics and the blend's.", resume=True)
    baseline_model_name: str = _f("imdb-sentiment-baseline",
                                  "Registered model name of the baseline in the MLflow registry.")

    # ------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        problems = []
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                problems.append(f"{f.name}={getattr(self, f.name)!r} is not one of {list(choices)}")
        positive = ["epochs", "batch_size", "eval_batch_size", "hidden_dim", "output_dim", "n_layers",
                    "attention_heads", "linformer_k", "sweep_trials",
                    "baseline_ngram_max", "baseline_min_df", "baseline_max_features",
                    "baseline_nb_ngram_max", "baseline_nb_min_df", "baseline_nb_max_features"]
        problems += [f"{n} must be >= 1, got {getattr(self, n)}" for n in positive if getattr(self, n) < 1]
        for n in ("max_train", "max_valid", "max_test", "num_threads", "baseline_max_train"):
            v = getattr(self, n)
            if v is not None and v < 1:
                problems.append(f"{n} must be >= 1 or None, got {v}")
        if not 0.0 < self.train_fraction < 1.0:
            problems.append(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 3 <= self.max_length <= 512:
            problems.append(f"max_length must be in [3, 512], got {self.max_length}")
        for n in ("baseline_c", "baseline_nb_c", "baseline_nb_alpha"):
            if getattr(self, n) <= 0:
                problems.append(f"{n} must be > 0, got {getattr(self, n)}")
        if (self.head in ATTENTION_HEADS and self.attention_heads >= 1
                and self.hidden_dim % self.attention_heads):
            problems.append(f"hidden_dim={self.hidden_dim} must be a multiple of "
                            f"attention_heads={self.attention_heads}")
        widths = [w.strip() for w in str(self.cnn_widths).split(",") if w.strip()]
        if not widths or not all(w.isdigit() and int(w) >= 1 for w in widths):
            problems.append(f"cnn_widths={self.cnn_widths!r} must be comma-separated positive "
                            "integers, e.g. '3,4,5'")
        unknown = [h for h in str(self.sweep_heads).split(",")
                   if h.strip() not in HEAD_NAMES]
        if unknown or not str(self.sweep_heads).strip():
            problems.append(f"sweep_heads={self.sweep_heads!r}: expected comma-separated heads "
                            f"of {', '.join(HEAD_NAMES)}")
        if self.sweep_minutes is not None and self.sweep_minutes <= 0:
            problems.append(f"sweep_minutes must be > 0 or None, got {self.sweep_minutes}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.balance_low <= self.balance_high <= 1.0:
            problems.append("balance band must satisfy 0 <= balance_low <= balance_high <= 1")
        for n in ("tracking_timeout_s", "probe_timeout_s", "promotion_lock_timeout_s",
                  "tracking_outage_s"):
            if getattr(self, n) <= 0:
                problems.append(f"{n} must be > 0, got {getattr(self, n)}")
        if self.tracking_max_retries < 0:
            problems.append(f"tracking_max_retries must be >= 0, got {self.tracking_max_retries}")
        if not 0.0 <= self.min_accuracy <= 1.0:
            problems.append(f"min_accuracy must be in [0, 1], got {self.min_accuracy}")
        for n in ("min_improvement", "min_lift_over_baseline"):
            if not -1.0 <= getattr(self, n) <= 1.0:
                problems.append(f"{n} must be in [-1, 1] (an accuracy difference), got "
                                f"{getattr(self, n)}")
        for n in ("max_behaviour_failure_rate", "max_slice_loss"):
            if not 0.0 <= getattr(self, n) <= 1.0:
                problems.append(f"{n} must be in [0, 1] (a share of cases), got "
                                f"{getattr(self, n)}")
        if self.train_encoder_layers < -1:
            problems.append(f"train_encoder_layers must be -1 (all), 0 (frozen) or a layer count, "
                            f"got {self.train_encoder_layers}")
        if self.encoder_lr <= 0:
            problems.append(f"encoder_lr must be > 0, got {self.encoder_lr}")
        if self.encoder_weight_decay < 0:
            problems.append(f"encoder_weight_decay must be >= 0, got {self.encoder_weight_decay}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            problems.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.encoder_attention_dropout is not None and not 0.0 <= self.encoder_attention_dropout < 1.0:
            problems.append(f"encoder_attention_dropout must be in [0, 1) or None, got "
                            f"{self.encoder_attention_dropout}")
        if self.train_encoder_layers != 0 and self.encoder_precision == "int8":
            problems.append("encoder_precision='int8' cannot train encoder layers (quantized "
                            "weights have no gradients); use train_encoder_layers=0 or another "
                            "precision")
        if problems:
            raise ValueError("invalid config: " + "; ".join(problems))

    # ------------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str = "homework", **overrides: Any) -> Config:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        # None means "not given" (an unset CLI flag or flow parameter): the preset's value stays.
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def default(name: str) -> Any:
    """The default of one Config field, for constructors that must not repeat it."""
    f = Config.__dataclass_fields__[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def resume_keys() -> tuple[str, ...]:
    """Fields marked `resume=True`: a checkpoint resumes only when they are all unchanged."""
    return tuple(f.name for f in fields(Config) if f.metadata.get("resume"))


# What each preset is for, in one phrase: the CLI's and the flows' help texts say it from here.
PRESET_SUMMARY: dict[str, str] = {
    "smoke": "seconds, for checks",
    "quick": "minutes on 2 CPU cores; what `make run` trains",
    "full": "the full 17,500 / 7,500 / 25,000 split",
    "homework": "the original model: frozen encoder, the full split at 512 tokens",
}


def preset_help(what: str) -> str:
    """'Named preset the other <what> override: smoke (...), quick (...), ...'."""
    return (f"Named preset the other {what} override: "
            + ", ".join(f"{name} ({text})" for name, text in PRESET_SUMMARY.items()) + ".")


# Presets hold only what differs from the field defaults (the homework spec).
# No preset turns the behavioural rule (max_behaviour_failure_rate) on yet: the natural bar, half
# of one test type's cases (no better than a coin on that behaviour), would refuse the NBSVM
# floor itself (measured: 65% of mft_negation failed, docs/gate.md), and the blended models
# have not been measured on the suite. Every decision shows the rates all the same.

PRESETS: dict[str, dict[str, Any]] = {
    # The original model, unblended: frozen encoder, GRU head, TF-IDF floor.
    "homework": {},
    # Seconds on CPU: for tests and a first end-to-end check of a fresh install.
    # The gate is open (no minimum, no lift over the baseline): a smoke run checks the plumbing,
    # and on 32 test reviews neither model's accuracy means anything. The bag-of-words model
    # sees the same 48 training reviews, so it costs no time either.
    "smoke": dict(max_train=48, max_valid=16, max_test=32, max_length=64, epochs=1,
                  batch_size=16, eval_batch_size=32, min_rows=1, min_accuracy=0.0,
                  min_lift_over_baseline=-1.0, baseline_max_train=48, run_dir="runs/smoke"),
    # `make run`, differing from the homework on purpose: the whole MiniLM fine-tunes for one
    # epoch on 2,500 reviews (fp32, attention dropout 0; the frozen MiniLM tops out near 82%),
    # head+tail keeps each review's verdict, usually at its end, and the registered model is
    # that encoder blended with an NBSVM bag-of-words model trained on all 17,500 training
    # reviews (seconds). The two err on different reviews: measured in benchmarks/README.md
    # (seeds 1234, 7, 42: blend 91.90%, 91.80%, 92.05% on the 2,000 test reviews, encoder alone
    # 88.35%, 87.40%, 89.00%, NBSVM alone 91.45%). The gate's minimum, 90%, sits more than a point below the
    # lowest seed, so `make run` ends with a champion on any machine; the blend must still beat
    # the NBSVM floor (it did by 0.35-0.60 points).
    "quick": dict(max_train=2500, max_valid=500, max_test=2000, max_length=256,
                  truncation="head_tail", epochs=1, batch_size=16, train_encoder_layers=-1,
                  encoder_lr=1e-4, encoder_attention_dropout=0.0, blend=True,
                  baseline_kind="nbsvm", min_accuracy=0.90, run_dir="runs/quick"),
    # The full split (17,500 / 7,500 / 25,000): the top 3 of MiniLM's 6 layers train on cached
    # states entering layer 3 (the frozen half runs once over the 50,000 reviews), blended with
    # the NBSVM model trained on all 17,500 training reviews. Its gate is what the preset is for:
    # 92.5% on the 25,000 test reviews, a point above the original's 91.4% and the NBSVM floor.
    "full": dict(max_length=256, truncation="head_tail", epochs=1, batch_size=16,
                 train_encoder_layers=3, encoder_lr=1e-4, encoder_attention_dropout=0.0,
                 blend=True, baseline_kind="nbsvm", min_accuracy=0.925, run_dir="runs/full"),
}
