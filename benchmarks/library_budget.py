"""The models/ budget: what LoRA rank the shipped experts can be stored at, and its F1 cost on dev.

    nice -n 5 python benchmarks/library_budget.py                 # writes its BENCHMARKS.md section
    python benchmarks/library_budget.py --experts conll2003 wnut17 --ranks 8 4 --dev 32 --no-write

Each expert of the shipped library is truncated to each rank by SVD of its delta
(``samedge.merge.adapter.shrink_expert``: the best approximation at that rank, stored fp16)
and scored with llama.cpp (runtime LoRA over the Q8_0 base, as selection does) on the first
``--dev`` sentences of its own dev split. Rank 8 is the expert as trained. Resumable: scores
are cached in runs/benchmarks/library_budget.json. The shipped library is now stored at
samedge.library.SHIPPED_RANK (6): run this on experts as trained (r=8, e.g. commit efd3c29's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import WORK, State, fmt_load, load_average, publish, table  # noqa: E402

NAME = "library_budget"
STATE = WORK / f"{NAME}.json"
COMMAND = "nice -n 5 python benchmarks/library_budget.py"
EXPERTS = ["conll2003", "bc5cdr", "crossner_ai", "wnut17", "gum"]
from samedge.library import MODELS_BUDGET_BYTES  # noqa: E402

MODELS_BUDGET_MB = MODELS_BUDGET_BYTES // 1_000_000


def score(expert, n: int, threads: int) -> dict:
    from samedge.base import provision
    from samedge.data.catalog import load_split
    from samedge.evaluate import score_documents
    from samedge.select.runner import run_experts

    gold = load_split(expert.manifest["domain"], "dev")[:n]
    pred = run_experts({"x": {"expert": expert}}, expert.labels, gold, provision(), threads=threads,
                       progress=False)["x"]
    m = score_documents(gold, pred).micro
    return {"f1": round(100 * m.f1, 1), "size_mb": round(expert.size / 1e6, 2)}


def report(data: dict, ranks: list[int]) -> str:
    rows, sizes = [], {}
    for name in data["config"]["experts"]:
        cells = []
        for r in ranks:
            row = data["rows"].get(f"{name}@{r}")
            cells.append("-" if row is None else row["f1"])
            if row:
                sizes[r] = row["size_mb"]
        rows.append([name] + cells)
    means = []
    for i, r in enumerate(ranks):
        vals = [row[1 + i] for row in rows if row[1 + i] != "-"]
        means.append(f"{sum(vals) / len(vals):.1f}" if vals else "-")
    rows.append(["**mean**"] + means)
    rows.append(["MB per expert"] + [sizes.get(r, "-") for r in ranks])
    embedder_mb = sum(p.stat().st_size for p in (REPO / "models" / "embedder").iterdir()) / 1e6
    fit = {r: int((MODELS_BUDGET_MB - embedder_mb) // sizes[r]) for r in ranks if r in sizes}
    rows.append(["experts that fit in 100 MB"] + [fit.get(r, "-") for r in ranks])
    return "\n".join([
        "## Library budget: LoRA rank and its dev F1 cost",
        "",
        f"`{COMMAND}` — {data['started']}, {data['machine']['cpu']}, load at start "
        f"{fmt_load(data['machine']['load_at_start'])}.",
        "",
        f"Each shipped expert truncated by SVD to each rank (the best approximation of its delta at that rank, "
        f"fp16, all 7 projections) and scored with llama.cpp on the first {data['config']['dev']} sentences of its "
        f"own dev split (entity micro F1). The embedder takes {embedder_mb:.1f} MB of the {MODELS_BUDGET_MB} MB.",
        "",
        table(["expert"] + [f"r={r}" for r in ranks], rows),
        "",
        *budget_verdict(means, ranks, fit),
    ])


def budget_verdict(means: list[str], ranks: list[int], fit: dict) -> list[str]:
    """One line per truncated rank: its mean dev F1 cost against the trained rank and what fits."""
    if not ranks or means[0] == "-":
        return []
    lines = []
    for r, m in zip(ranks[1:], means[1:]):
        if m != "-":
            lines.append(f"- r={r}: {float(m) - float(means[0]):+.1f} mean dev F1 against r={ranks[0]}; "
                         f"{fit.get(r, '-')} experts and the embedder fit in {MODELS_BUDGET_MB} MB.")
    return lines


def main(argv=None) -> int:
    from samedge.library import Library
    from samedge.merge.adapter import shrink_expert

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experts", nargs="*", default=EXPERTS)
    ap.add_argument("--ranks", nargs="*", type=int, default=[8, 6, 4])
    ap.add_argument("--dev", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    if args.report_only:  # never State(...) here: it would start a new run over the finished one
        data = State.last(STATE)
        publish(NAME, report(data, data["config"]["ranks"]), write=not args.no_write)
        return 0
    state = State(STATE, {"experts": args.experts, "ranks": args.ranks, "dev": args.dev})
    library = Library.open()
    for name in args.experts:
        expert = library.get(name)
        for r in args.ranks:
            key = f"{name}@{r}"
            if state.has(key):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                shrunk = expert
                if r < expert.manifest["lora"]["r"]:
                    from samedge.library import load_expert
                    shrink_expert(expert, r, Path(tmp) / name)
                    shrunk = load_expert(Path(tmp) / name)
                state.put(key, dict(score(shrunk, args.dev, args.threads), load=load_average()))
            print(key, state.rows[key], flush=True)
    state.finish()
    publish(NAME, report(state.data, args.ranks), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
