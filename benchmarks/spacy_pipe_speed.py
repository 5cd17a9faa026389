"""The spaCy component against `samedge extract`'s own batching: sentences/s on the same texts, one run.

    nice -n 5 python benchmarks/spacy_pipe_speed.py --bundle bundles/legal      # writes its BENCHMARKS.md section
    python benchmarks/spacy_pipe_speed.py --bundle bundles/legal --n 50 --no-write

Both rows load the bundle once and decode the same CoNLL test sentences: ``Extractor.extract_many``
(what `samedge extract` runs) and ``nlp.pipe(texts, batch_size=64)`` through the `samedge` spaCy
component (each batch one ``extract_many`` call). The rows alternate (extractor, pipe, extractor,
pipe) so that the machine's load falls on both alike; each figure is the better of its two passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import fmt_load, load_average, machine, now, publish, table  # noqa: E402

NAME = "spacy_pipe_speed"
COMMAND = "nice -n 5 python benchmarks/spacy_pipe_speed.py --bundle bundles/legal"


def main(argv=None) -> int:
    import spacy

    from samedge.data.catalog import load_split
    from samedge.extract import Extractor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    texts = [d["text"] for d in load_split("conll2003", "test")[:args.n]]
    info = machine()
    extractor = Extractor.load(args.bundle, threads=args.threads)
    nlp = spacy.blank("en")
    nlp.add_pipe("samedge", config={"bundle": args.bundle, "threads": args.threads})
    best = {"extract_many": float("inf"), "nlp.pipe": float("inf")}
    same = None
    for _ in range(2):
        t = time.perf_counter()
        records = extractor.extract_many(texts)
        best["extract_many"] = min(best["extract_many"], time.perf_counter() - t)
        t = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=64))
        best["nlp.pipe"] = min(best["nlp.pipe"], time.perf_counter() - t)
        same = sum([(e["start"], e["end"], e["label"]) for e in r["entities"]]
                   == [(s.start_char, s.end_char, s.label_) for s in d.ents] for r, d in zip(records, docs))
    rows = [[name, f"{args.n / s:.2f}", f"{best['extract_many'] / s:.2f}"] for name, s in best.items()]
    body = "\n".join([
        "## spaCy component against samedge extract", "",
        f"`{COMMAND}` — {now()}, {info['cpu']}, {args.threads} threads, load {fmt_load(info['load_at_start'])} at "
        f"start, {fmt_load(load_average())} at the end.", "",
        f"{args.n} CoNLL test sentences, the same bundle loaded once by each; better of two alternating passes.", "",
        table(["path", "sentences/s", "speed vs extract_many"], rows), "",
        f"- Documents whose `doc.ents` equal the Extractor's entities: {same}/{args.n} (strict alignment keeps only "
        "spans on token boundaries; the others are counted in `doc.user_data['samedge']['misaligned']`).",
    ])
    publish(NAME, body, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
