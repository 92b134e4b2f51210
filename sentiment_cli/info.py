"""`sentiment info`: tokenizer facts, split sizes and parameter counts."""

from __future__ import annotations

import json

from sentiment.config import Config
from sentiment_cli.config_args import add_config_arguments

OPTIONS = ("data", "split_seed", "train_fraction", "max_train", "max_valid", "max_test",
           "encoder", "encoder_revision", "max_length", "head", "hidden_dim", "output_dim",
           "n_layers", "bidirectional", "dropout", "cnn_widths", "attention_heads", "linformer_k")


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="Tokenizer facts, split sizes and parameter counts.")
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.add_argument("--no-data", action="store_true", help="Skip loading data (no split sizes).")
    add_config_arguments(p, OPTIONS)
    p.set_defaults(run=run, check_data=True)


def run(cfg: Config, args) -> int:
    from sentiment.data.imdb import load_splits
    from sentiment.encoding import encoders
    from sentiment.model.bert_gru import count_parameters
    from sentiment.training.loop import build_model
    encoder, tok, spec = encoders.load_encoder(cfg.encoder, cfg.encoder_revision)
    sample = "Hello WORLD how ARE yoU?"
    tokens = tok.tokenize(sample)
    info = {
        "encoder": cfg.encoder, "encoder_location": spec.location,
        "vocab_size": len(tok),
        "special_token_ids": {"cls": tok.cls_token_id, "sep": tok.sep_token_id,
                              "pad": tok.pad_token_id, "unk": tok.unk_token_id},
        "max_input_length": int(min(tok.model_max_length, encoder.config.max_position_embeddings)),
        "example": {"text": sample, "tokens": tokens, "ids": tok.convert_tokens_to_ids(tokens)},
        "parameters": count_parameters(build_model(cfg, encoder)),
    }
    if not args.no_data:
        info["split_sizes"] = load_splits(cfg).sizes()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>18}: {v}")
    return 0
