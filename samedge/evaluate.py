"""Entity-level micro precision, recall and F1: exact span and exact type.

Documents are matched by ``id`` (or by position, see ``pair_documents``). A predicted entity counts as correct when a
gold entity of the same document has the same (start, end, label).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import UserError


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.tp + self.fn}


@dataclass
class Report:
    micro: Score = field(default_factory=Score)
    per_label: dict = field(default_factory=dict)
    documents: int = 0

    def to_dict(self) -> dict:
        return {"documents": self.documents, "micro": self.micro.to_dict(),
                "per_label": {k: v.to_dict() for k, v in sorted(self.per_label.items())}}

    def table(self) -> str:
        rows = [("label", "precision", "recall", "f1", "support")]
        for name, s in sorted(self.per_label.items()):
            rows.append((name, f"{100 * s.precision:.2f}", f"{100 * s.recall:.2f}",
                         f"{100 * s.f1:.2f}", str(s.tp + s.fn)))
        m = self.micro
        rows.append(("micro", f"{100 * m.precision:.2f}", f"{100 * m.recall:.2f}",
                     f"{100 * m.f1:.2f}", str(m.tp + m.fn)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)


def _spans(doc: dict) -> Counter:
    return Counter((e["start"], e["end"], e["label"]) for e in doc.get("entities", []))


def pair_documents(gold: list[dict], pred: list[dict]) -> list[tuple[dict, dict]]:
    """Match predictions to gold by ``id``; by position when the two files share no ids.

    Position is the fallback for files whose ids come from their names (two
    CoNLL files, or JSONL without ids). Either way the texts must be equal,
    since offsets into different texts cannot be compared.
    """
    pred_by_id = {}
    for d in pred:
        if d["id"] in pred_by_id:
            raise UserError(f"duplicate document id {d['id']!r} in predictions")
        pred_by_id[d["id"]] = d
    gold_ids = {d["id"] for d in gold}
    if len(gold_ids) != len(gold):
        raise UserError("duplicate document ids in gold")
    if gold and not gold_ids & set(pred_by_id):
        if len(gold) != len(pred):
            raise UserError(f"gold and predictions share no document ids and differ in length "
                            f"({len(gold)} vs {len(pred)} documents)")
        pairs = list(zip(gold, pred))
    else:
        extra = set(pred_by_id) - gold_ids
        if extra:
            raise UserError(f"{len(extra)} predicted documents are not in gold, e.g. {sorted(extra)[0]!r}")
        missing = [g["id"] for g in gold if g["id"] not in pred_by_id]
        if missing:
            raise UserError(f"no prediction for {len(missing)} gold documents, e.g. {missing[0]!r}")
        pairs = [(g, pred_by_id[g["id"]]) for g in gold]
    for g, p in pairs:
        if g["text"] != p["text"]:
            raise UserError(f"document {g['id']!r}: the predicted text differs from the gold text")
    return pairs


def score_documents(gold: list[dict], pred: list[dict]) -> Report:
    """Score predictions against gold. Every gold document needs a prediction."""
    report = Report(documents=len(gold))
    for g, p in pair_documents(gold, pred):
        gs, ps = _spans(g), _spans(p)
        for span in gs | ps:
            tp = min(gs[span], ps[span])
            s = report.per_label.setdefault(span[2], Score())
            s.tp += tp
            s.fp += ps[span] - tp
            s.fn += gs[span] - tp
    for s in report.per_label.values():
        report.micro.tp += s.tp
        report.micro.fp += s.fp
        report.micro.fn += s.fn
    return report
