"""Answer aliases (samedge/select/label_alignment.py): their similarity threshold, chosen on dev splits.

    nice -n 5 python benchmarks/answer_aliases.py              # writes its BENCHMARKS.md section
    python benchmarks/answer_aliases.py --dev 32 --no-write

Each case is one shipped expert (runtime LoRA over the Q8_0 base, as selection scores it) asked for
another domain's labels on that domain's dev sentences, with the prompt names aligned at samedge's
default threshold, as a build asks. Aliases change only how answers are read, never the prompt, so
each case decodes once and every threshold re-reads the same answers (the same Extractor over a
replay of them). Entities carry the target's tags; the gold is scored unchanged. Resumable: answers
and rows are cached in runs/benchmarks/answer_aliases.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import WORK, State, fmt_load, publish, table  # noqa: E402

NAME = "answer_aliases"
STATE = WORK / f"{NAME}.json"
COMMAND = "nice -n 5 python benchmarks/answer_aliases.py"
THRESHOLDS = [0.7, 0.6, 0.5, 0.4, 0.3]
CASES = [  # (expert, dev domain): experts asked for types they were not trained on, and a few that match
    ("conll2003", "conll2003"),
    ("conll2003", "wnut17"),
    ("conll2003", "crossner_politics"),
    ("conll2003", "litbank"),
    ("conll2003", "snips2017"),
    ("gum", "snips2017"),
    ("gum", "tasteset"),
    ("jnlpba", "bc2gm"),
    ("jnlpba", "craft"),
    ("bc5cdr", "linnaeus"),
    ("bc5cdr", "wlp2020"),
    ("wnut17", "hipe2022_en"),
    ("crossner_music", "crossner_literature"),
    ("sec_filings", "finer_ord"),
]


class _Recorder:
    """An engine that remembers each chunk's answer (keyed by the chunk's text)."""

    def __init__(self, engine):
        self.engine, self.answers = engine, {}
        self.n_ctx = getattr(engine, "n_ctx", None)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def complete(self, prefix, texts, suffix, max_tokens):
        got = self.engine.complete(prefix, texts, suffix, max_tokens)
        self.answers.update({t: list(a) for t, a in zip(texts, got)})
        return got


class _Replay(_Recorder):
    """The recorded answers again: the prompt is unchanged, so each chunk asks the same question."""

    def __init__(self, engine, answers: dict):
        super().__init__(engine)
        self.answers = answers

    def complete(self, prefix, texts, suffix, max_tokens):
        return [tuple(self.answers[t]) for t in texts]


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
    from samedge.data.catalog import get_domain, load_split
    from samedge.embed import Embedder
    from samedge.evaluate import score_documents
    from samedge.extract import Extractor
    from samedge.library import Library
    from samedge.runtime.llama import LlamaEngine
    from samedge.select.label_alignment import alias_labels, align_labels
    from samedge.select.performance import lora_gguf, scoring_base

    library = Library.open()
    embedder, base = Embedder.load(threads=args.threads), provision()
    engine = LlamaEngine(scoring_base(base), threads=args.threads)
    try:
        for expert_name, domain in CASES:
            case = f"{expert_name} on {domain}"
            if all(state.has(f"{case}@{t or 'off'}") for t in [None] + THRESHOLDS):
                continue
            expert = library.get(expert_name)
            gold = load_split(domain, "dev")[:args.dev]
            texts = [d["text"] for d in gold]
            shown, _ = align_labels(get_domain(domain).labels, expert.labels, embedder)
            engine.set_adapter(lora_gguf(expert, base.gguf))
            recorder = _Recorder(engine)
            Extractor(recorder, shown).extract_many(texts)
            for threshold in [None] + THRESHOLDS:
                labels, aliases = (shown, []) if threshold is None else alias_labels(shown, expert.labels, embedder,
                                                                                      threshold)
                pred = Extractor(_Replay(engine, recorder.answers), labels).extract_many(texts)
                m = score_documents(gold, pred).micro
                state.put(f"{case}@{threshold or 'off'}", {
                    "f1": round(100 * m.f1, 1), "precision": round(100 * m.precision, 1),
                    "recall": round(100 * m.recall, 1),
                    "dropped": sum(p["counts"]["dropped_labels"] for p in pred),
                    "aliases": [f"{a['alias']}->{a['tag']} ({a['similarity']:.2f})" for a in aliases]})
            print(case, {t: state.rows[f"{case}@{t or 'off'}"]["f1"] for t in [None] + THRESHOLDS}, flush=True)
    finally:
        engine.close()
    state.finish()
    publish(NAME, report(state.data), write=not args.no_write)
    return 0


def report(data: dict) -> str:
    cols = ["off"] + [str(t) for t in data["config"]["thresholds"]]
    rows, sums = [], {c: [] for c in cols}
    for expert, domain in CASES:
        cells = []
        for c in cols:
            row = data["rows"].get(f"{expert} on {domain}@{c}")
            cells.append("-" if row is None else row["f1"])
            if row:
                sums[c].append(row["f1"])
        rows.append([f"{expert} on {domain}"] + cells)
    rows.append(["**mean**"] + [f"{sum(v) / len(v):.1f}" if len(v) == len(CASES) else "-" for v in sums.values()])
    from samedge.select.label_alignment import DEFAULT_ALIAS_THRESHOLD
    shown = str(DEFAULT_ALIAS_THRESHOLD)
    aliases = [f"{e} on {d}: " + ", ".join(data["rows"][f"{e} on {d}@{shown}"]["aliases"])
               for e, d in CASES if data["rows"].get(f"{e} on {d}@{shown}", {}).get("aliases")]
    means = {c: sum(v) / len(v) for c, v in sums.items() if v and len(v) == len(CASES)}
    best = max(means, key=lambda c: (means[c], c != "off")) if means else None
    return "\n".join([
        "## Answer aliases: the similarity threshold, chosen on dev", "",
        f"`{COMMAND}` — {data['started']}, load at start {fmt_load(data['machine']['load_at_start'])}.", "",
        f"One shipped expert per case, asked for a dev split's labels (first {data['config']['dev']} dev sentences, "
        "prompt names aligned at the default 0.6). An answer whose type the prompt does not list is dropped "
        "(*off*), or, at each threshold, read as the listed label closest to that type (cosine of the "
        "all-MiniLM-L6-v2 embeddings of `name: description`). Every column re-reads the same answers. Micro F1.", "",
        table(["case"] + cols, rows), "",
        *(f"- Aliases at {shown}: {line}" for line in aliases),
        (f"- Best mean on dev: {best} ({means[best]:.1f} against {means.get('off', float('nan')):.1f} without "
         f"aliases); samedge's default (samedge/select/label_alignment.py) is {shown}." if best else ""),
    ])


if __name__ == "__main__":
    sys.exit(main())
