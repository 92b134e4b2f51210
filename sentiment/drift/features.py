"""What drift is measured on: per-review features computed the same way for the training data
and for incoming reviews.

- ``tokens``: length in the model's tokens (no special tokens, no truncation);
- ``cut``: 1 when the review is longer than the model's ``max_length`` (special tokens
  counted), so its end is cut (or its middle, with head+tail truncation);
- ``unk_share``: share of its tokens that are the tokenizer's unknown token (``[UNK]``);
- ``oov_share``: share of its words not among the training data's most frequent words (a
  review in another language, or of another domain, scores high);
- ``non_ascii``: share of its characters outside ASCII;
- ``markup``: share of its characters inside HTML tags or entities (IMDB has ``<br />``).
"""

from __future__ import annotations

import re
from collections import Counter

FEATURES = ("tokens", "cut", "unk_share", "oov_share", "non_ascii", "markup")
SHARE_FEATURES = ("cut",)  # 0/1 per review: compared as a share
VOCABULARY_SIZE = 20_000
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# The data contract's HTML tag, or an entity such as &amp; or &#39;.
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?\s*>|&#?[A-Za-z0-9]{1,8};")
_TOKENIZE_BATCH = 512


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def vocabulary(texts: list[str], size: int = VOCABULARY_SIZE) -> list[str]:
    """The `size` most frequent words of `texts`, most frequent first."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(words(t))
    return [w for w, _ in counts.most_common(size)]


def token_counts(tokenizer, texts: list[str]) -> tuple[list[int], list[int]]:
    """(tokens, [UNK] tokens) per text, in batches, nothing truncated."""
    from transformers.utils import logging as hf_logging
    unk = tokenizer.unk_token_id
    lengths, unks = [], []
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "longer than the maximum length": that is the point
    try:
        for i in range(0, len(texts), _TOKENIZE_BATCH):
            ids = tokenizer(texts[i:i + _TOKENIZE_BATCH], add_special_tokens=False,
                            truncation=False)["input_ids"]
            lengths += [len(x) for x in ids]
            unks += [sum(1 for t in x if t == unk) if unk is not None else 0 for x in ids]
    finally:
        hf_logging.set_verbosity(verbosity)
    return lengths, unks


def compute(texts: list[str], tokenizer, max_length: int, vocab: set[str]) -> dict[str, list]:
    """Each feature of FEATURES for each text (strings only; the caller leaves the others out)."""
    lengths, unks = token_counts(tokenizer, texts)
    out: dict[str, list] = {f: [] for f in FEATURES}
    for text, n, u in zip(texts, lengths, unks):
        ws = words(text)
        chars = max(1, len(text))
        out["tokens"].append(n)
        out["cut"].append(1 if n + 2 > max_length else 0)  # [CLS] and [SEP] count
        out["unk_share"].append(u / n if n else 0.0)
        out["oov_share"].append(sum(w not in vocab for w in ws) / len(ws) if ws else 1.0)
        out["non_ascii"].append(sum(ord(c) > 127 for c in text) / chars)
        out["markup"].append(sum(len(m) for m in _MARKUP.findall(text)) / chars)
    return out
