"""`--ensemble`: two merged models (one from each selection criterion), predictions combined.

The paper merges the similarity-selected and the performance-selected experts
into two task models and combines their outputs. Combining rules (pure):

- ``union``: every entity of the first model, plus the second model's entities
  that overlap none of them (the first model wins a conflict);
- ``vote``: with two models, the entities both predict (same span and type).
"""

from __future__ import annotations

COMBINE_RULES = ("union", "vote")


def _overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def combine(first: list[dict], second: list[dict], rule: str) -> list[dict]:
    if rule == "vote":
        keys = {(e["start"], e["end"], e["label"]) for e in second}
        out = [e for e in first if (e["start"], e["end"], e["label"]) in keys]
    elif rule == "union":
        out = list(first) + [e for e in second if not any(_overlaps(e, f) for f in first)]
    else:
        raise ValueError(f"unknown combine rule {rule!r}")
    return sorted(out, key=lambda e: (e["start"], e["end"]))


class EnsembleExtractor:
    """Two Extractors over the same label set; the same API as one."""

    def __init__(self, first, second, rule: str = "union", info: dict | None = None):
        if rule not in COMBINE_RULES:
            raise ValueError(f"unknown combine rule {rule!r}")
        self.first, self.second, self.rule = first, second, rule
        self.labels = first.labels
        self.info = dict(info or first.info, ensemble=rule)

    def extract(self, text: str, doc_id: str = "0") -> dict:
        return self.extract_many([text], ids=[doc_id])[0]

    def extract_many(self, texts: list[str], ids: list[str] | None = None) -> list[dict]:
        a = self.first.extract_many(texts, ids)
        b = self.second.extract_many(texts, ids)
        for ra, rb in zip(a, b):
            ra["entities"] = combine(ra["entities"], rb["entities"], self.rule)
            ra["counts"] = {k: ra["counts"][k] + rb["counts"].get(k, 0) for k in ra["counts"]}
        return a
