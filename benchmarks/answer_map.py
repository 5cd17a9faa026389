"""The answer map (samedge/select/answer_map.py): chosen on dev, then reported on test.

    nice -n 5 python benchmarks/answer_map.py                     # all 16 P and N targets, writes BENCHMARKS.md
    python benchmarks/answer_map.py --targets crossner_ai --no-write
    python benchmarks/answer_map.py --report-only

For each protocol P and N target, the build of the "SaM with 32 labeled dev instances" row (combined
selection on the target's 32 labeled dev sentences, the protocol's library) is made once without an
answer map. The merged model then decodes, with every answer type kept as it was written:
- the 32 labeled dev sentences (what a build learns the map from),
- 64 other dev sentences (defaults_dev_docs: where the map's variants are compared),
- the 200 test sentences of protocols P and N (reported once, for the variant chosen on dev).
Every variant re-reads the same answers, so the comparison is exact. The variants: no map (the answer
types the label set knows, as before), samedge's rule (micro F1 on the 32, at each minimum support),
and spaCy's peer rule (each answer type to the tag it most often matches exactly, never dropped).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.accuracy import (DEV_LABELED, WORK as ACCURACY_WORK, bootstrap_average, defaults_dev_docs,  # noqa: E402
                                 make_target, test_docs)
from benchmarks.common import WORK, expert_runner, fmt_load, load_average, machine, now, publish, table  # noqa: E402
from samedge.data.protocols import N_TARGETS, P_TARGETS, library_for  # noqa: E402
from samedge.select.answer_map import MIN_SUPPORT  # noqa: E402

NAME = "answer_map"
# One file per target, so that two processes on disjoint --targets can share the run.
RESULTS = WORK / NAME
COMMAND = "nice -n 5 python benchmarks/answer_map.py"
TARGETS = [("P", t) for t in P_TARGETS] + [("N", t) for t in N_TARGETS]
SUPPORTS = [1, 2, 3]
VARIANTS = ["off"] + [f"F1, support {s}" for s in SUPPORTS] + ["most frequent match"]
TEST = 200


def spacy_rule(preds, gold, default):
    """The peer's rule: each answer type to the tag it most often matches exactly (unmatched: as before)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for found, expected in zip(preds, gold):
        spans = {(s, e): t for s, e, t in expected}
        for s, e, source in found:
            if (s, e) in spans:
                votes[source][spans[(s, e)]] += 1
    return {src: c.most_common(1)[0][0] for src, c in votes.items() if c.most_common(1)[0][0] != default.get(src)}


def read(preds, mapping, default):
    """Predicted documents' (start, end, tag) under ``mapping`` over ``default``."""
    out = []
    for found in preds:
        doc = []
        for s, e, source in found:
            tag = mapping[source] if source in mapping else default.get(source)
            if tag is not None:
                doc.append((s, e, tag))
        out.append(doc)
    return out


def counts(preds, gold) -> list[list[int]]:
    """Per document (tp, fp, fn), exact span and type."""
    rows = []
    for found, expected in zip(preds, gold):
        tp = len(set(found) & set(expected))
        rows.append([tp, len(set(found)) - tp, len(set(expected)) - tp])
    return rows


def f1(rows) -> float:
    tp, fp, fn = (sum(r[i] for r in rows) for i in range(3))
    return round(100 * 2 * tp / (2 * tp + fp + fn), 1) if tp else 0.0


def decode(model: Path, labels, docs, threads):
    from samedge.extract.engines.llama import LlamaEngine
    from samedge.extract.extractor import Extractor
    from samedge.select.answer_map import spans_of
    from samedge.select.performance import retag_gold

    engine = LlamaEngine(model, threads=threads)
    try:
        found = Extractor(engine, labels, raw_answers=True).extract_many([d["text"] for d in docs],
                                                                         ids=[d["id"] for d in docs])
    finally:
        engine.close()
    return spans_of(found), spans_of(retag_gold(docs, labels))


def measure(study: str, target: str, threads: int) -> dict:
    from samedge.build import BuildOptions, build
    from samedge.bundle import labels_of, verify_bundle
    from samedge.extract.prompts import answer_keys
    from samedge.library import Library
    from samedge.select.answer_map import learn_answer_map
    from samedge.select.performance import sample_instances

    names = library_for(study, target)
    experts = [e for e in Library.open(None).experts(verify=True) if e.name in names]
    profile = make_target(target, labeled=True)
    out = ACCURACY_WORK / "bundles" / "answer_map" / target
    opts = BuildOptions(target=profile, only=tuple(e.name for e in experts), threads=threads, force=True,
                        selection="combined", answer_map=False)
    manifest = build(opts, out, log=lambda msg: None, runner=expert_runner())
    labels = labels_of(verify_bundle(out))
    learn_docs, _ = sample_instances(profile, opts.sample, opts.seed)
    assert len(learn_docs) <= DEV_LABELED
    learn = decode(out / "model.gguf", labels, learn_docs, threads)
    dev = decode(out / "model.gguf", labels, defaults_dev_docs(target), threads)
    test = decode(out / "model.gguf", labels, test_docs(target, TEST), threads)
    default = answer_keys(labels)
    maps = {"off": {}, "most frequent match": spacy_rule(*learn, default)}
    for s in SUPPORTS:
        maps[f"F1, support {s}"] = learn_answer_map(*learn, default, min_support=s)
    return {"selected": [e["name"] for e in manifest["merge"]["experts"]],
            "maps": maps,
            "dev": {v: counts(read(dev[0], m, default), dev[1]) for v, m in maps.items()},
            "test": {v: counts(read(test[0], m, default), test[1]) for v, m in maps.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", nargs="*", help="a subset of the P and N targets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from samedge.files import atomic_write_json

    for study, target in TARGETS:
        path = RESULTS / f"{target}.json"
        if args.report_only or (args.targets and target not in args.targets) or path.exists():
            continue
        started, load = now(), load_average()
        row = dict(measure(study, target, args.threads), study=study, started=started, load_at_start=load,
                   machine=machine()["cpu"], test_size=TEST)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, row)
        print(target, {v: f1(c) for v, c in row["dev"].items()}, flush=True)
    publish(NAME, report(), write=not args.no_write)
    return 0


def _averages(rows: dict, split: str, targets: list[str]) -> dict:
    return {v: sum(f1(rows[t][split][v]) for t in targets) / len(targets) for v in VARIANTS}


def report() -> str:
    import json

    rows = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    done = [t for _, t in TARGETS if t in rows]
    if not done:
        return "## Answer map: how the merged model's answer types are read (dev, then test)\n\n(no results yet)"
    dev_avg = _averages(rows, "dev", done)
    chosen = max(VARIANTS[1:], key=lambda v: dev_avg[v])
    dev_table = [[t] + [f1(rows[t]["dev"][v]) for v in VARIANTS] for t in done]
    dev_table.append(["**average**"] + [f"{dev_avg[v]:.1f}" for v in VARIANTS])
    lines = [
        "## Answer map: how the merged model's answer types are read (dev, then test)", "",
        f"`{COMMAND}` — {min(rows[t]['started'] for t in done)} to {max(rows[t]['started'] for t in done)} "
        f"(target starts), {rows[done[0]]['machine']}, load at the first start "
        f"{fmt_load(rows[done[0]]['load_at_start'])}"
        + ("" if len(done) == len(TARGETS) else f" (partial: {len(done)} of {len(TARGETS)} targets)") + ".", "",
        "Each P and N target's labeled SaM build (combined selection on 32 labeled dev sentences, the protocol's "
        "library) decodes once, every answer type kept as written. The map is learned on those 32 sentences; "
        "the variants are compared on 64 other dev sentences (micro F1, exact span and type):", "",
        table(["target"] + VARIANTS, dev_table), "",
        f"- Chosen on dev: **{chosen}** ({dev_avg[chosen]:.1f} against {dev_avg['off']:.1f} without a map); "
        f"samedge's rule is F1 at support {MIN_SUPPORT} (samedge.select.answer_map.MIN_SUPPORT).",
    ]
    test_lines = []
    for study in ("P", "N"):
        ts = [t for s, t in TARGETS if s == study and t in rows]
        if not ts:
            continue
        for v in ("off", chosen):
            mean = sum(f1(rows[t]["test"][v]) for t in ts) / len(ts)
            lo, hi = bootstrap_average([rows[t]["test"][v] for t in ts])
            test_lines.append([study, v, len(ts), f"{mean:.1f}", f"{lo:.1f}-{hi:.1f}"])
    lines += ["", f"Then on test ({TEST} sentences a target, once, for the variant chosen on dev):",
              "", table(["protocol", "variant", "targets", "average F1", "95% interval"], test_lines), "",
              "- Maps learned (" + chosen + "): " + "; ".join(
                  f"{t}: " + (", ".join(f"{k}->{v or 'dropped'}" for k, v in rows[t]["maps"][chosen].items()) or "none")
                  for t in done)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
