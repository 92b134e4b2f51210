"""The `sentiment` library against the homework's spec, on real reviews and tiny random encoders."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch

from sentiment.config import Config
from sentiment.data import imdb
from sentiment.data.imdb import DataError
from sentiment.encoding import encoders
from sentiment.encoding.tokenization import encode_texts, truncate
from sentiment.model.bert_gru import BERTGRUSentiment, count_parameters


@pytest.fixture(scope="module")
def minilm():
    encoder, tokenizer, _ = encoders.load_encoder("minilm")
    return encoder, tokenizer


def smoke_cfg(tmp_path, imdb_dir, **kw) -> Config:
    base = dict(data=str(imdb_dir), run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
                progress=False, track=False)
    return Config.from_preset("smoke", **{**base, **kw})


def quiet(_msg: str) -> None:
    pass


# --- tokenizer facts -----------------------------------------------------------------------

def test_tokenizer_matches_bert_base_uncased(minilm):
    _, tok = minilm
    assert len(tok) == 30522
    tokens = tok.tokenize("Hello WORLD how ARE yoU?")
    assert tokens == ["hello", "world", "how", "are", "you", "?"]
    assert tok.convert_tokens_to_ids(tokens) == [7592, 2088, 2129, 2024, 2017, 1029]
    assert [tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.unk_token_id] == [101, 102, 0, 100]
    assert tok.model_max_length == 512 or minilm[0].config.max_position_embeddings == 512


def test_long_review_is_cut_to_510_tokens_plus_specials(minilm):
    _, tok = minilm
    text = "great " * 800
    ids = encode_texts(tok, [text], max_length=512)[0]
    assert len(ids) == 512 and ids[0] == 101 and ids[-1] == 102
    short = encode_texts(tok, ["fine film"], max_length=512)[0]
    assert short == [101] + tok.convert_tokens_to_ids(["fine", "film"]) + [102]


def test_head_tail_truncation_keeps_start_and_end():
    ids = list(range(100))
    assert truncate(ids, 10, "head") == list(range(10))
    kept = truncate(ids, 10, "head_tail")
    assert kept[:2] == [0, 1] and kept[2:] == list(range(92, 100)) and len(kept) == 10
    assert truncate(ids[:5], 10, "head_tail") == ids[:5]
    with pytest.raises(ValueError, match="unknown truncation"):
        truncate(ids, 10, "middle")


# --- data ----------------------------------------------------------------------------------

def test_real_splits_match_homework(imdb_dir):
    splits = imdb.load_splits(Config(data=str(imdb_dir)))
    assert splits.sizes() == {"train": 17500, "valid": 7500, "test": 25000}
    assert set(splits.train["label"].unique()) == {0, 1}
    # Seeded: the same split twice, and train and valid are disjoint parts of the original train.
    again = imdb.load_splits(Config(data=str(imdb_dir)))
    assert splits.train["text"].head(50).tolist() == again.train["text"].head(50).tolist()
    assert not set(splits.train["text"].head(500)) & set(splits.valid["text"])


def test_preset_subsets_are_stratified_and_deterministic(imdb_dir):
    cfg = Config.from_preset("quick", data=str(imdb_dir))
    a, b = imdb.load_splits(cfg), imdb.load_splits(cfg)
    assert a.sizes() == {"train": cfg.max_train, "valid": cfg.max_valid, "test": cfg.max_test}
    assert a.test["text"].tolist() == b.test["text"].tolist()
    full = imdb.load_splits(Config(data=str(imdb_dir)))
    share = full.train["label"].mean()
    assert abs(a.train["label"].mean() - share) < 0.001  # class shares kept exactly (rounding)


def _write_parquet(path, df):
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)


def _frame(n=20):
    return pd.DataFrame({"text": [f"review number {i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


def test_missing_data_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist"):
        imdb.load_imdb(str(missing))


def test_parquet_without_text_column(tmp_path):
    _write_parquet(tmp_path / "train.parquet", _frame().rename(columns={"text": "review"}))
    _write_parquet(tmp_path / "test.parquet", _frame())
    with pytest.raises(DataError, match=r"missing column\(s\) \['text'\]"):
        imdb.load_imdb(str(tmp_path))


def test_labels_outside_0_1(tmp_path):
    bad = _frame()
    bad.loc[3, "label"] = 2
    _write_parquet(tmp_path / "train.parquet", bad)
    _write_parquet(tmp_path / "test.parquet", _frame())
    with pytest.raises(DataError, match=r"labels outside \{0, 1\}: \[2\]"):
        imdb.load_imdb(str(tmp_path))


def test_string_labels_rejected(tmp_path):
    bad = _frame().astype({"label": str})
    _write_parquet(tmp_path / "train.parquet", _frame())
    _write_parquet(tmp_path / "test.parquet", bad)
    with pytest.raises(DataError, match="'label' must be integers"):
        imdb.load_imdb(str(tmp_path))


def test_empty_data(tmp_path):
    _write_parquet(tmp_path / "train.parquet", _frame().iloc[:0])
    _write_parquet(tmp_path / "test.parquet", _frame())
    with pytest.raises(DataError, match="no rows"):
        imdb.load_imdb(str(tmp_path))


def test_corrupt_parquet(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"not parquet at all")
    _write_parquet(tmp_path / "test.parquet", _frame())
    with pytest.raises(DataError, match="not a readable parquet"):
        imdb.load_imdb(str(tmp_path))


def _acl_files():
    return {f"aclImdb/{split}/{lab}/{i}_{7 if lab == 'pos' else 2}.txt": f"{split} {lab} review {i}"
            for split in ("train", "test") for lab in ("pos", "neg") for i in range(3)}


def test_aclimdb_folder_and_tarball_give_the_same_frames(tmp_path):
    files = _acl_files()
    for name, text in files.items():
        (tmp_path / "dir" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "dir" / name).write_text(text)
    tar_path = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, text in files.items():
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    from_dir = imdb.load_imdb(str(tmp_path / "dir"))
    from_tar = imdb.load_imdb(str(tar_path))
    for split in ("train", "test"):
        assert len(from_dir[split]) == 6
        assert sorted(from_dir[split]["text"]) == sorted(from_tar[split]["text"])
        pos = from_dir[split][from_dir[split]["text"].str.contains(" pos ")]
        assert (pos["label"] == 1).all()


def test_hub_id_without_network_fails_clearly():
    with pytest.raises(DataError, match="stanfordnlp/imdb"):
        imdb.load_imdb("stanfordnlp/imdb")


# --- encoders and model --------------------------------------------------------------------

def test_unknown_encoder_says_what_was_tried():
    with pytest.raises(encoders.EncoderNotFound) as e:
        encoders.load_encoder("no-such-org/no-such-encoder")
    msg = str(e.value)
    assert "no-such-org/no-such-encoder" in msg and "packaged" in msg and "Hub" in msg


def test_local_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(encoders.EncoderNotFound, match="no config.json"):
        encoders.resolve(str(tmp_path))


def test_encoder_from_a_local_path(tmp_path, minilm):
    encoder, tok = minilm
    encoder.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    enc2, tok2, spec = encoders.load_encoder(str(tmp_path))
    assert spec.local and tok2.tokenize("Hello") == ["hello"]
    assert all(not p.requires_grad for p in enc2.parameters())


def test_bert_base_shape_parameter_counts():
    from transformers import BertConfig, BertModel
    model = BERTGRUSentiment(BertModel(BertConfig()), 256, 1, 2, True, 0.25)
    assert count_parameters(model) == {"total": 112_241_409, "trainable": 2_759_169}


def test_model_forward_and_frozen_encoder():
    encoder, tok, _ = encoders.load_encoder("random-tiny")
    model = BERTGRUSentiment(encoder, 16, 1, 2, True, 0.25)
    assert not any(p.requires_grad for p in model.bert.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert model.bert.training  # homework: model.train() also enables BERT's dropout
    ids = torch.tensor(encode_texts(tok, ["a fine film", "a bad film"], 32))
    out = model(ids, torch.ones_like(ids))
    assert out.shape == (2, 1)
    out.sum().backward()
    assert model.head.out.weight.grad is not None


def test_head_runs_on_precomputed_states_and_ignores_padding():
    from sentiment.model.bert_gru import GRUHead
    torch.manual_seed(0)
    head = GRUHead(8, 4, 1, 2, True, 0.0).eval()
    x = torch.randn(1, 5, 8)
    padded = torch.cat([x, torch.randn(1, 3, 8)], dim=1)
    a = head(x, torch.tensor([5]))
    b = head(padded, torch.tensor([5]))
    assert torch.allclose(a, b, atol=1e-6)


# --- training ------------------------------------------------------------------------------

def test_smoke_training_on_real_reviews_lowers_the_loss(tmp_path, imdb_dir):
    cfg = smoke_cfg(tmp_path, imdb_dir, epochs=4, lr=3e-3)
    from sentiment.training.loop import TrainHooks, train
    summary = train(cfg, hooks=TrainHooks(report=quiet))
    losses = [h["train_loss"] for h in summary["history"]]
    assert losses[-1] < losses[0] - 0.05, losses
    assert summary["split_sizes"] == {"train": 48, "valid": 16, "test": 32}
    run = tmp_path / "run"
    for rel in ("model/head.safetensors", "model/head_config.json", "model/preprocessing.json",
                "checkpoints/last.safetensors", "checkpoints/best.safetensors", "metrics.json",
                "test_predictions.parquet"):
        assert (run / rel).exists(), rel
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.pt"))
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test"]["n"] == 32 and 0 <= saved["test"]["accuracy"] <= 1
    # The head's file holds its architecture only; what the run measured is in metrics.json.
    assert set(json.loads((run / "model/head_config.json").read_text())) == {
        "head", "embedding_dim", "hidden_dim", "output_dim", "n_layers", "bidirectional",
        "dropout"}
    assert saved["data_fingerprint"] and saved["encoder_precision"] in ("fp32", "bf16")
    assert saved["best_epoch"] == 1 + int(np.argmin([h["val_loss"] for h in summary["history"]]))


def _head_tensors(run_dir):
    from safetensors.torch import load_file
    return load_file(str(run_dir / "model" / "head.safetensors"))


@pytest.mark.parametrize("cache_states", [True, False])
def test_resumed_run_equals_uninterrupted_run(tmp_path, imdb_dir, cache_states):
    from sentiment.training.loop import TrainHooks, train
    common = dict(encoder="random-tiny", epochs=3, cache_states=cache_states)
    full = smoke_cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "full"), **common)
    train(full, hooks=TrainHooks(report=quiet))
    part = smoke_cfg(tmp_path, imdb_dir, run_dir=str(tmp_path / "part"), **common)
    with pytest.raises(KeyboardInterrupt):
        train(part, hooks=TrainHooks(report=quiet, stop_after_epoch=1))
    assert not (tmp_path / "part" / "model").exists()
    summary = train(part.replace(resume=True), hooks=TrainHooks(report=quiet))
    assert len(summary["history"]) == 3
    a, b = _head_tensors(tmp_path / "full"), _head_tensors(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_refuses_a_changed_config(tmp_path, imdb_dir):
    from sentiment.training.checkpoints import ResumeError
    from sentiment.training.loop import TrainHooks, train
    cfg = smoke_cfg(tmp_path, imdb_dir, encoder="random-tiny", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, hooks=TrainHooks(report=quiet, stop_after_epoch=1))
    with pytest.raises(ResumeError, match="hidden_dim"):
        train(cfg.replace(resume=True, hidden_dim=8), hooks=TrainHooks(report=quiet))
    with pytest.raises(ResumeError, match="no checkpoint"):
        train(cfg.replace(resume=True, run_dir=str(tmp_path / "empty")), hooks=TrainHooks(report=quiet))


def test_token_cache_hits_and_misses(tmp_path, imdb_dir):
    from sentiment.encoding.tokenization import warm_cache
    cfg = smoke_cfg(tmp_path, imdb_dir)
    first = warm_cache(cfg)
    again = warm_cache(cfg)
    longer = warm_cache(cfg.replace(max_length=96))
    assert not first["cache_hit"] and again["cache_hit"] and not longer["cache_hit"]
    assert first["splits"]["train"]["fingerprint"] == again["splits"]["train"]["fingerprint"]
    assert longer["splits"]["train"]["tokens"] > first["splits"]["train"]["tokens"]


def test_state_cache_roundtrip(tmp_path, minilm):
    from sentiment.encoding.tokenization import TokenizedSplit
    from sentiment.training import state_cache
    encoder, tok = minilm
    texts = ["a good film", "awful, just awful and long"]
    ids = [np.asarray(x, dtype=np.int32) for x in encode_texts(tok, texts, 32)]
    split = TokenizedSplit(ids, np.array([1, 0]), "fp-test")
    kw = dict(encoder_id="x", cache_dir=tmp_path, device=torch.device("cpu"), precision="fp32", pad_id=0)
    store, info = state_cache.get_or_build(encoder, split, **kw)
    assert not info["hit"]
    store2, info2 = state_cache.get_or_build(encoder, split, **kw)
    assert info2["hit"] and np.array_equal(store2.offsets, store.offsets)
    states, lengths = store.batch([1])
    with torch.inference_mode():
        ref = encoder(input_ids=torch.from_numpy(ids[1][None].astype(np.int64)))[0]
    assert lengths.tolist() == [len(ids[1])]
    assert torch.allclose(states[0], ref[0], atol=2e-2)  # fp16 storage


# --- prediction and CLI --------------------------------------------------------------------

def test_batched_prediction_equals_single_prediction(tmp_path, imdb_dir):
    from sentiment.model.predict import SentimentModel, predict_sentiment
    from sentiment.training.loop import TrainHooks, train
    cfg = smoke_cfg(tmp_path, imdb_dir, encoder="random-tiny", encoder_precision="fp32")
    train(cfg, hooks=TrainHooks(report=quiet))
    # Precision is the loading machine's choice (default 'auto'); predict_sentiment runs fp32.
    sm = SentimentModel.load(tmp_path / "run", precision="fp32")
    texts = ["Justice League is terrible. I hated it.", "Avengers was great!!", "meh " * 40]
    batched = sm.predict_proba(texts)
    single = [predict_sentiment(sm.model, sm.tokenizer, t, sm.preprocessing) for t in texts]
    assert np.allclose(batched, single, atol=1e-5)
    assert ((batched > 0) & (batched < 1)).all()
    with pytest.raises(TypeError, match="strings"):
        sm.predict_proba(["ok", None])
    # Tokenized as trained, batched as configured: nothing falls back to a constant.
    assert (sm.preprocessing.max_length, sm.preprocessing.truncation) == (cfg.max_length, cfg.truncation)
    assert sm.batch_size == Config().eval_batch_size
    spec_file = tmp_path / "run" / "model" / "preprocessing.json"
    spec_file.unlink()
    with pytest.raises(FileNotFoundError) as e:
        SentimentModel.load(tmp_path / "run")
    assert str(spec_file) in str(e.value) and "\n" not in str(e.value)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sentiment_cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_info_json(imdb_dir):
    r = _cli("info", "--json", "--data", str(imdb_dir))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vocab_size"] == 30522
    assert info["special_token_ids"] == {"cls": 101, "sep": 102, "pad": 0, "unk": 100}
    assert info["max_input_length"] == 512
    assert info["split_sizes"] == {"train": 17500, "valid": 7500, "test": 25000}
    assert info["parameters"]["trainable"] < info["parameters"]["total"]


def test_cli_train_then_predict(tmp_path, imdb_dir):
    run = tmp_path / "run"
    r = _cli("train", "--preset", "smoke", "--data", str(imdb_dir), "--run-dir", str(run),
             "--cache-dir", str(tmp_path / "cache"), "--encoder", "random-tiny", "--no-progress",
             "--no-track")
    assert r.returncode == 0, r.stderr
    assert "Epoch: 01" in r.stdout and "Val. Acc" in r.stdout
    assert json.loads(r.stdout[r.stdout.index("{"):])["test_accuracy"] >= 0
    r = _cli("predict", "--model", str(run), "Avengers was great!!")
    assert r.returncode == 0, r.stderr
    prob, label, text = r.stdout.strip().split("\t")
    assert 0 < float(prob) < 1 and label in ("pos", "neg") and text == "Avengers was great!!"


@pytest.mark.parametrize("args,needle", [
    (["train", "--preset", "smoke", "--data", "/nonexistent/imdb", "--no-track"], "does not exist"),
    (["info", "--no-data", "--encoder", "nobody/nothing"], "cannot load encoder 'nobody/nothing'"),
    (["train", "--preset", "smoke", "--max-length", "2", "--no-track"], "max_length must be in"),
    (["predict", "--model", "/nonexistent/run", "hi"], "no trained head"),
])
def test_cli_errors_are_one_clear_line(args, needle):
    r = _cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_cli_unknown_encoder_with_valid_data_names_the_encoder(tmp_path, imdb_dir):
    r = _cli("train", "--preset", "smoke", "--data", str(imdb_dir), "--encoder", "nobody/nothing",
             "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
             "--no-progress", "--no-track")
    assert r.returncode == 2
    assert "cannot load encoder 'nobody/nothing'" in r.stderr and "Traceback" not in r.stderr
    assert "does not exist" not in r.stderr  # the data was fine: no data error masks this one
    assert len(r.stderr.strip().splitlines()) == 1


# --- config --------------------------------------------------------------------------------

def test_config_presets_and_overrides():
    hw = Config.from_preset("homework")
    assert (hw.max_length, hw.batch_size, hw.epochs, hw.max_train) == (512, 128, 2, None)
    q = Config.from_preset("quick", epochs=3, max_train=None)
    assert q.epochs == 3 and q.max_train == 2500  # None means "not given"
    with pytest.raises(ValueError, match="unknown preset"):
        Config.from_preset("huge")
    with pytest.raises(ValueError, match="unknown config field"):
        Config.from_preset("smoke", epoch=3)
    with pytest.raises(ValueError, match="truncation"):
        Config(truncation="middle")
    assert Config.from_dict(q.to_dict()) == q


def test_fast_cpu_training_path_equals_the_packed_gru():
    """The unpacked per-direction scans used for CPU training give the packed GRU's logits and
    gradients, whatever garbage the padding holds."""
    from sentiment.model.bert_gru import GRUHead
    from sentiment.model.gru_scan import unpacked_head_forward
    torch.manual_seed(0)
    head = GRUHead(12, 8, 1, 2, True, 0.0).train()
    lengths = torch.tensor([7, 3, 5, 1])
    states = torch.randn(4, 7, 12)
    ref = head(states, lengths)
    ref.sum().backward()
    ref_grads = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()
    fast = unpacked_head_forward(head, states, lengths)
    fast.sum().backward()
    assert torch.allclose(fast, ref, atol=1e-6)
    for p, g in zip(head.parameters(), ref_grads):
        assert torch.allclose(p.grad, g, atol=1e-5)


# --- preprocessing spec --------------------------------------------------------------------

def test_preprocessing_spec_round_trip(tmp_path):
    from sentiment.encoding import preprocessing
    spec = preprocessing.from_config(Config.from_preset("quick", encoder_revision="v1"))
    path = preprocessing.save(spec, tmp_path / "model")
    assert path == tmp_path / "model" / preprocessing.FILE
    assert not list((tmp_path / "model").glob("*.tmp"))
    assert preprocessing.load(tmp_path / "model") == spec
    assert (spec.encoder, spec.encoder_revision, spec.max_length, spec.truncation) == (
        "minilm", "v1", 256, "head_tail")


@pytest.mark.parametrize("content,needle", [
    (None, "no preprocessing spec"),
    ("{not json", "malformed preprocessing spec"),
    ("[]", "expected a JSON object"),
    ('{"encoder": "minilm"}', "missing key(s)"),
    ('{"encoder": "minilm", "encoder_revision": null, "max_length": 64, "truncation": "head", '
     '"data_fingerprint": "x"}', "unknown key(s) ['data_fingerprint']"),
    ('{"encoder": "minilm", "encoder_revision": null, "max_length": "64", "truncation": "head"}',
     "max_length='64' has the wrong type"),
    ('{"encoder": "minilm", "encoder_revision": null, "max_length": 2, "truncation": "head"}',
     "max_length must be in"),
    ('{"encoder": "minilm", "encoder_revision": null, "max_length": 64, "truncation": "middle"}',
     "truncation='middle'"),
])
def test_preprocessing_spec_missing_or_malformed_is_one_line_naming_the_file(tmp_path, content,
                                                                             needle):
    from sentiment.encoding import preprocessing
    path = tmp_path / preprocessing.FILE
    if content is not None:
        path.write_text(content)
    with pytest.raises(FileNotFoundError if content is None else ValueError) as e:
        preprocessing.load(tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and needle in msg and "\n" not in msg, msg


# --- defaults have one source --------------------------------------------------------------

def test_model_sizes_have_no_defaults_of_their_own():
    import inspect
    from dataclasses import MISSING, fields

    from sentiment.model.bert_gru import HeadConfig
    assert all(f.default is MISSING for f in fields(HeadConfig))
    params = list(inspect.signature(BERTGRUSentiment).parameters.values())
    assert [p.name for p in params] == ["bert", "hidden_dim", "output_dim", "n_layers",
                                        "bidirectional", "dropout"]
    assert all(p.default is inspect.Parameter.empty for p in params)


def _checkpoint(tmp_path, cfg):
    from sentiment.model.bert_gru import GRUHead
    from sentiment.training.checkpoints import save_checkpoint
    head = GRUHead(8, 4, 1, 1, True, 0.0)
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, head, torch.optim.Adam(head.parameters()),
                    {"epoch": 1, "history": [], "config": cfg.to_dict()})
    return path


def test_resume_keys_are_the_fields_marked_resume(tmp_path, monkeypatch):
    import types
    from dataclasses import fields

    from sentiment.config import resume_keys
    from sentiment.training.checkpoints import ResumeError, check_resumable, resume_mismatches
    cfg = Config.from_preset("smoke")
    marked = {f.name for f in fields(Config) if f.metadata.get("resume")}
    assert set(resume_keys()) == marked
    assert {"data", "encoder", "max_length", "truncation", "hidden_dim", "lr", "seed"} <= marked
    assert not marked & {"run_dir", "epochs", "progress", "resume", "device", "track"}
    for f in fields(Config):  # a changed marked field refuses the resume, any other does not
        changed = resume_mismatches({**cfg.to_dict(), f.name: "<changed>"}, cfg)
        assert [c.split(" ")[0] for c in changed] == ([f.name] if f.name in marked else []), f.name
    # Marking a field is all it takes: epochs is free to change until its metadata says not.
    path = _checkpoint(tmp_path, cfg)
    check_resumable(path, cfg.replace(epochs=cfg.epochs + 3))
    field = Config.__dataclass_fields__["epochs"]
    monkeypatch.setattr(field, "metadata", types.MappingProxyType({**field.metadata, "resume": True}))
    with pytest.raises(ResumeError, match=r"different epochs \(1 != 4\)"):
        check_resumable(path, cfg.replace(epochs=cfg.epochs + 3))


# --- progress ------------------------------------------------------------------------------

def test_progress_off_a_terminal_is_plain_periodic_lines():
    from sentiment.common.progress import progress
    out = io.StringIO()
    bar = progress(range(4), "epoch 1 train", True, stream=out, interval_s=0.0)
    for _ in bar:
        bar.set_postfix(loss="0.6931")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 4
    assert lines[-1].startswith("epoch 1 train: batch 4/4 (100%), ") and "batch/s" in lines[-1]
    assert lines[-1].endswith(", loss 0.6931")
    quiet_out = io.StringIO()
    assert list(progress(range(4), "x", True, stream=quiet_out)) == [0, 1, 2, 3]
    assert quiet_out.getvalue() == ""  # a loop shorter than the interval prints nothing
    off = io.StringIO()
    list(progress(range(4), "x", False, stream=off, interval_s=0.0))
    assert off.getvalue() == ""


def test_progress_lines_go_to_a_sink_even_on_a_terminal():
    """What a Prefect task does with its run logger: every line to the sink, none printed."""
    from sentiment.common.progress import lines_to, progress, say

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    out, got = Terminal(), []
    with lines_to(got.append):
        bar = progress(range(3), "epoch 2 train", True, stream=out, interval_s=0.0)
        for _ in bar:
            bar.set_postfix(**{"loss": "0.5", "tokens/s": "1,234"})
        say("Epoch: 02 | done")
    assert out.getvalue() == ""
    assert len(got) == 4 and got[-1] == "Epoch: 02 | done"
    assert got[2].startswith("epoch 2 train: batch 3/3 (100%)")
    assert got[2].endswith(", loss 0.5, tokens/s 1,234")
    with lines_to(got.append):
        pass
    say("after")  # outside the block: printed, not sent
    assert got[-1] == "Epoch: 02 | done"


def test_training_progress_off_a_terminal_writes_no_carriage_return(tmp_path, imdb_dir, capfd,
                                                                    monkeypatch):
    from sentiment.common import progress
    from sentiment.training.loop import TrainHooks, train
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)  # a line per step, to see every loop's
    train(smoke_cfg(tmp_path, imdb_dir, encoder="random-tiny", progress=True),
          hooks=TrainHooks(report=quiet))
    out, err = capfd.readouterr()
    assert "\r" not in out and "\r" not in err
    lines = err.splitlines()
    for loop in ("encode train", "epoch 1 train", "epoch 1 valid", "test"):
        assert any(line.startswith(f"{loop}: batch ") for line in lines), loop
    assert any("loss" in line and "batch/s" in line for line in lines)
