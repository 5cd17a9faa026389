"""Show a target's labels to the experts under the names they were trained on.

An expert answers with the type names it learned: asked for CoNLL's types as "human, place,
institution, other name", the conll2003 expert answers "person", "location", ... and every answer
is dropped (0.0 F1 on CoNLL dev, BENCHMARKS.md "Label alignment"). So before selection, each target
label whose name no library expert knows is matched, by the shipped sentence embedder, to the
closest label of the library's vocabulary ("name: description" against "name: description");
above a similarity threshold (chosen on dev) the prompt shows the known name, with the user's
description. Entities still carry the user's tag: only the prompt changes.
"""

from __future__ import annotations

import numpy as np

from ..config import build_default
from ..data.labels import Label

DEFAULT_THRESHOLD = build_default("align_threshold")  # chosen on dev splits: BENCHMARKS.md, "Label alignment"


def label_text(label: Label) -> str:
    return f"{label.name}: {label.description}"


def match_labels(similarity: np.ndarray, target_known: list[bool], threshold: float) -> dict[int, int]:
    """Target index -> vocabulary index, greedily by descending similarity (pure).

    Labels the library already knows keep their name, and reserve it; each vocabulary name serves at
    most one target label, so two user labels never collapse into one prompt name."""
    pairs = sorted(((similarity[i, j], i, j) for i in range(similarity.shape[0])
                    for j in range(similarity.shape[1])), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for score, i, j in pairs:
        if score < threshold or target_known[i] or i in matched or j in used:
            continue
        matched[i] = j
        used.add(j)
    return matched


def align_labels(labels: list[Label], vocabulary: list[Label], embedder,
                 threshold: float = DEFAULT_THRESHOLD) -> tuple[list[Label], list[dict]]:
    """(labels with aligned prompt names, one row per renamed label: tag, from, to, similarity)."""
    by_name: dict[str, Label] = {}
    for lab in vocabulary:
        by_name.setdefault(lab.name, lab)
    known = {name.lower() for name in by_name}
    target_known = [lab.name.lower() in known for lab in labels]
    # A known name is reserved for the label that already uses it.
    vocab = [lab for name, lab in sorted(by_name.items())
             if name.lower() not in {lab.name.lower() for lab in labels}]
    if not vocab or all(target_known):
        return list(labels), []
    t = embedder.embed([label_text(lab) for lab in labels])
    v = embedder.embed([label_text(lab) for lab in vocab])
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    similarity = t @ v.T
    matched = match_labels(similarity, target_known, threshold)
    out, report = [], []
    for i, lab in enumerate(labels):
        if i in matched:
            new = vocab[matched[i]].name
            report.append({"tag": lab.tag, "from": lab.name, "to": new,
                           "similarity": round(float(similarity[i, matched[i]]), 4)})
            lab = Label(new, lab.description, tag=lab.tag)
        out.append(lab)
    return out, report
