"""The behavioural suite: data files in ``suite/`` expanded into cases, the same on every machine.

Three kinds of test, each made of several test types (the prefix of the type's name):

- ``mft_*`` minimum functionality: a review and the label any sentiment model must give it
  (clear sentiment, negation, contrast with "but", intensifiers); hand-written
  (``minimum_functionality.jsonl``) and from templates (``templates.json``);
- ``inv_*`` invariance: a review and an edit of it that must not change the predicted label
  (another actor's name, another title, two typos, an added neutral sentence);
- ``dir_*`` direction: a review and the same review with a clearly negative (positive)
  sentence appended, whose P(positive) must not rise (fall) by more than a tolerance.

The suite's identity is its manifest's version and a digest of its files: results recorded for
one suite are never mistaken for another's. docs/behaviour.md says how to extend it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

SUITE_DIR = Path(__file__).resolve().parent / "suite"
MANIFEST = "manifest.json"
HAND_WRITTEN = "minimum_functionality.jsonl"
TEMPLATES = "templates.json"
PERTURBATIONS = "perturbations.json"
KINDS = ("mft", "inv", "dir")


@dataclass(frozen=True)
class Case:
    test: str                 # the test type, e.g. "mft_negation"
    text: str                 # the review (mft) or the original (inv, dir)
    label: int | None = None  # mft: the label it must get
    edited: str | None = None  # inv, dir: the edited review
    direction: int = 0        # dir: +1 P(positive) must not fall, -1 must not rise

    @property
    def kind(self) -> str:
        return self.test.split("_", 1)[0]


@dataclass(frozen=True)
class Suite:
    version: str              # "<manifest version>-<12 hex of the files' digest>"
    cases: tuple[Case, ...]
    tolerance: float          # dir: how far P(positive) may move the wrong way

    def types(self) -> list[str]:
        return sorted({c.test for c in self.cases})


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _spread(items: list, limit: int | None) -> list:
    """`limit` items spread evenly over `items` (all of them when it is None or larger)."""
    if not limit or limit >= len(items):
        return items
    return [items[round(i * (len(items) - 1) / (limit - 1))] if limit > 1 else items[0]
            for i in range(limit)]


def _from_templates(spec: dict) -> list[Case]:
    words, out = spec["words"], []
    for t in spec["templates"]:
        slots = list(dict.fromkeys(re.findall(r"{(\w+)}", t["template"])))
        unknown = [s for s in slots if s not in words]
        if unknown:
            raise ValueError(f"{TEMPLATES}: template {t['template']!r} names unknown word "
                             f"lists {unknown}")
        filled = [t["template"].format(**dict(zip(slots, combo)))
                  for combo in itertools.product(*(words[s] for s in slots))]
        out += [Case(t["test"], text, int(t["label"]))
                for text in _spread(filled, t.get("limit", spec.get("limit")))]
    return out


def _typo(text: str, rank: int) -> str:
    """`text` with two neighbouring letters swapped in its `rank`-th longest word."""
    words = sorted(set(re.findall(r"[A-Za-z]{4,}", text)), key=lambda w: (-len(w), w))
    w = words[rank % len(words)]
    # From the middle on, the first two neighbours that differ: swapping "nn" changes nothing.
    i = next(j for j in [*range(len(w) // 2, len(w)), *range(1, len(w) // 2)]
             if w[j - 1].lower() != w[j].lower())
    return text.replace(w, w[:i - 1] + w[i] + w[i - 1] + w[i + 1:], 1)


def _from_perturbations(spec: dict) -> list[Case]:
    names, titles = spec["names"], spec["titles"]
    out = []
    for base in spec["bases"]:
        original = base.format(name=names[0], title=titles[0])
        out += [Case("inv_names", original, edited=base.format(name=n, title=titles[0]))
                for n in names[1:]]
        out += [Case("inv_titles", original, edited=base.format(name=names[0], title=t))
                for t in titles[1:]]
        out += [Case("inv_typos", original, edited=_typo(original, r)) for r in (0, 1)]
        out += [Case("inv_neutral", original, edited=f"{original} {s}") for s in spec["neutral"]]
        out += [Case("dir_negative", original, edited=f"{original} {s}", direction=-1)
                for s in spec["negative"]]
        out += [Case("dir_positive", original, edited=f"{original} {s}", direction=1)
                for s in spec["positive"]]
    return out


def load_suite(folder: Path | str = SUITE_DIR) -> Suite:
    """The suite in `folder`, expanded; a clear error naming the file for a malformed one."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        cases = [Case(**json.loads(line)) for line in
                 (folder / HAND_WRITTEN).read_text().splitlines() if line.strip()]
        cases += _from_templates(json.loads((folder / TEMPLATES).read_text()))
        perturb = json.loads((folder / PERTURBATIONS).read_text())
        cases += _from_perturbations(perturb)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"behavioural suite in {folder} is unreadable: {e}") from e
    bad = sorted({c.test for c in cases if c.kind not in KINDS})
    if bad:
        raise ValueError(f"behavioural suite in {folder}: test types {bad} do not start with "
                         f"one of {KINDS}")
    return Suite(version=f"{manifest['version']}-{_digest(folder)}", cases=tuple(cases),
                 tolerance=float(perturb.get("tolerance", 0.0)))
