"""Label alignment (samedge/select/label_alignment.py): its similarity threshold, chosen on dev splits.

    nice -n 5 python benchmarks/label_alignment.py              # writes its BENCHMARKS.md section
    python benchmarks/label_alignment.py --dev 32 --no-write

Each case is one shipped expert (runtime LoRA over the Q8_0 base, as selection does) asked for a
dev split's labels, once as they are ("off") and once per threshold with the labels aligned to the
expert's own label vocabulary (as a build aligns to the experts it merges). Entities carry the target's own tags either way, so the gold is
scored unchanged. Resumable: rows cached in runs/benchmarks/label_alignment.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import WORK, State, fmt_load, publish, table  # noqa: E402

NAME = "label_alignment"
STATE = WORK / f"{NAME}.json"
COMMAND = "nice -n 5 python benchmarks/label_alignment.py"
THRESHOLDS = [0.8, 0.7, 0.6, 0.5, 0.4]
# The CoNLL types under names no expert was trained on (the same descriptions).
RENAMED = {"person": "human", "location": "place", "organization": "institution", "miscellaneous": "other name"}
CASES = [  # (expert, dev domain, renamed?)
    ("conll2003", "conll2003", True),
    ("conll2003", "wnut17", False),
    ("conll2003", "crossner_politics", False),
    ("conll2003", "litbank", False),
    ("jnlpba", "bc2gm", False),
    ("gum", "snips2017", False),
]


def case_name(case) -> str:
    expert, domain, renamed = case
    return f"{expert} on {domain}" + (" (renamed types)" if renamed else "")


def dev_case(domain: str, renamed: bool, n: int):
    """(labels, gold documents): the labels tagged as the gold is labeled."""
    from samedge.data.catalog import get_domain, load_split
    from samedge.data.labels import Label

    labels = get_domain(domain).labels
    docs = load_split(domain, "dev")[:n]
    if renamed:
        labels = [Label(RENAMED[lab.name], lab.description) for lab in labels]
        docs = [dict(d, entities=[dict(e, label=RENAMED[e["label"]]) for e in d["entities"]]) for d in docs]
    return labels, docs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    if args.report_only:  # never State(...) here: it would start a new run over the finished one
        publish(NAME, report(State.last(STATE)), write=not args.no_write)
        return 0
    state = State(STATE, {"dev": args.dev, "thresholds": THRESHOLDS})
    from samedge.base import provision
    from samedge.embed import Embedder
    from samedge.evaluate import score_documents
    from samedge.library import Library
    from samedge.select.label_alignment import align_labels
    from samedge.select.runner import run_experts

    library = Library.open()
    embedder, base = Embedder.load(threads=args.threads), provision()
    for case in CASES:
        expert, domain, renamed = case
        labels, gold = dev_case(domain, renamed, args.dev)
        vocabulary = library.get(expert).labels  # as a build aligns to the experts it merges
        for threshold in [None] + THRESHOLDS:
            key = f"{case_name(case)}@{threshold or 'off'}"
            if state.has(key):
                continue
            shown, renames = (labels, []) if threshold is None else align_labels(labels, vocabulary, embedder,
                                                                                  threshold)
            pred = run_experts({"x": {"expert": library.get(expert)}}, shown, gold, base, threads=args.threads,
                               progress=False)["x"]
            state.put(key, {"f1": round(100 * score_documents(gold, pred).micro.f1, 1),
                            "renames": [f"{r['from']}->{r['to']} ({r['similarity']:.2f})" for r in renames]})
            print(key, state.rows[key], flush=True)
    state.finish()
    publish(NAME, report(state.data), write=not args.no_write)
    return 0


def report(data: dict) -> str:
    cols = ["off"] + [str(t) for t in data["config"]["thresholds"]]
    rows, sums = [], {c: [] for c in cols}
    for case in CASES:
        cells = []
        for c in cols:
            row = data["rows"].get(f"{case_name(case)}@{c}")
            cells.append("-" if row is None else row["f1"])
            if row:
                sums[c].append(row["f1"])
        rows.append([case_name(case)] + cells)
    rows.append(["**mean**"] + [f"{sum(v) / len(v):.1f}" if len(v) == len(CASES) else "-" for v in sums.values()])
    renames = sorted({r for k, row in data["rows"].items() if k.endswith("@0.6") for r in row["renames"]})
    return "\n".join([
        "## Label alignment: the similarity threshold, chosen on dev", "",
        f"`{COMMAND}` — {data['started']}, load at start {fmt_load(data['machine']['load_at_start'])}.", "",
        f"One shipped expert per case, asked for a dev split's labels (first {data['config']['dev']} dev sentences), "
        "as they are (*off*) or aligned to that expert's label vocabulary at each threshold (cosine of the "
        "all-MiniLM-L6-v2 embeddings of `name: description`). Entities keep the target's tags. Micro F1.", "",
        table(["case"] + cols, rows), "",
        "- Renames at 0.6: " + ("; ".join(renames) if renames else "none"),
        _choice(sums),
    ])


def _choice(sums: dict) -> str:
    means = {c: sum(v) / len(v) for c, v in sums.items() if v and len(v) == len(CASES)}
    if not means:
        return ""
    best = max(means, key=lambda c: (means[c], c != "off"))
    return (f"- Best mean on dev: {best} ({means[best]:.1f} against {means.get('off', float('nan')):.1f} without "
            "alignment); samedge's default threshold (samedge/select/label_alignment.py) is 0.6.")


if __name__ == "__main__":
    sys.exit(main())
