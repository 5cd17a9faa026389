"""The training recipe, chosen on dev splits only: which prompt variations make an expert follow
label names it never saw (samedge/train/recipe.py).

    nice -n 5 python benchmarks/recipe_ablation.py                 # train each variant, score, write BENCHMARKS.md
    python benchmarks/recipe_ablation.py --variants plain renames --steps 150 --threads 1
    python benchmarks/recipe_ablation.py --report-only

Each variant trains the conll2003 expert from scratch for ``--steps`` steps (same seed, same
batches; only the recipe keys differ) into runs/recipe/VARIANT, then every variant is scored
with llama.cpp (runtime LoRA over the Q8_0 base, as selection does) on the first ``--dev``
sentences of dev splits:

- **in-domain**: conll2003 dev, its own label names;
- **renamed**: conll2003 dev, the same types asked as "human", "place", "institution",
  "other name" with the same descriptions (names no recipe shows in training);
- **transfer**: wnut17, crossner_politics and mit_movie dev, label sets the expert never saw.

Resumable: trained variants are reused, scores are cached in runs/benchmarks/recipe_ablation.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import WORK, State, fmt_load, load_average, publish, table  # noqa: E402

NAME = "recipe_ablation"
STATE = WORK / f"{NAME}.json"
RUNS = REPO / "runs" / "recipe"
SOURCE = "conll2003"
COMMAND = "nice -n 5 python benchmarks/recipe_ablation.py"

RENAMES_SUBSETS = {"rename_prob": 0.5, "subset_prob": 0.3, "max_negatives": 3}
# name -> (recipe keys, how it starts: "scratch" | "shipped" (the shipped expert, warm-started) | None (no
# training: the shipped expert as it is), steps (None: --steps)).
VARIANTS = {
    "shipped": ({"rename_prob": 0.0, "subset_prob": 0.0, "max_negatives": 3}, None, 0),
    "plain": ({"rename_prob": 0.0, "subset_prob": 0.0, "max_negatives": 3}, "scratch", None),
    "renames": ({"rename_prob": 0.5, "subset_prob": 0.0, "max_negatives": 3}, "scratch", None),
    "renames+subsets": (RENAMES_SUBSETS, "scratch", None),
    "shipped+renames+subsets": (RENAMES_SUBSETS, "shipped", 50),
}
# CoNLL's types under names no recipe uses, with the same descriptions.
HELD_OUT_NAMES = {"person": "human", "location": "place", "organization": "institution",
                  "miscellaneous": "other name"}
# mit_movie's types (actor, director, genre, ...) are new to every expert: it shows whether one reads the list.
EVALS = ["conll2003 in-domain", "conll2003 renamed", "wnut17", "crossner_politics", "mit_movie"]


def eval_sets(n: int) -> dict:
    """name -> (labels, gold documents), first ``n`` dev sentences each."""
    from samedge.data.catalog import get_domain, load_split
    from samedge.data.labels import Label

    conll = load_split(SOURCE, "dev")[:n]
    labels = get_domain(SOURCE).labels
    renamed = [Label(HELD_OUT_NAMES[lab.name], lab.description) for lab in labels]
    conll_renamed = [dict(d, entities=[dict(e, label=HELD_OUT_NAMES[e["label"]]) for e in d["entities"]])
                     for d in conll]
    out = {"conll2003 in-domain": (labels, conll), "conll2003 renamed": (renamed, conll_renamed)}
    for domain in EVALS[2:]:
        out[domain] = (get_domain(domain).labels, load_split(domain, "dev")[:n])
    return out


def train_variant(name: str, steps: int, threads: int) -> Path:
    import torch

    from samedge.library import shipped_library
    from samedge.train import catalog_source, load_config, train

    keys, start, own_steps = VARIANTS[name]
    if start is None:
        return shipped_library() / SOURCE
    out = RUNS / name / SOURCE
    if (out / "expert.json").exists():
        return out
    torch.set_num_threads(threads)
    config = load_config(overrides=dict(keys, max_steps=own_steps or steps, dev_sentences=0))
    train([catalog_source(SOURCE)], out, name=SOURCE, config=config, resume=True,
          init_from=shipped_library() / SOURCE if start == "shipped" else None)
    return out


def score_variant(folder: Path, sets: dict, threads: int) -> dict:
    from samedge.base import provision
    from samedge.evaluate import score_documents
    from samedge.library import load_expert
    from samedge.select.runner import run_experts

    expert = load_expert(folder)
    base = provision()
    scores = {}
    for name, (labels, gold) in sets.items():
        pred = run_experts({"x": {"expert": expert}}, labels, gold, base, threads=threads, progress=False)["x"]
        m = score_documents(gold, pred).micro
        scores[name] = {"f1": round(100 * m.f1, 1), "precision": round(100 * m.precision, 1),
                        "recall": round(100 * m.recall, 1)}
    return scores


def transfer_score(row: dict) -> float:
    """Mean F1 over the sets the expert was not trained on (every column but in-domain)."""
    return sum(row["scores"][e]["f1"] for e in EVALS[1:]) / len(EVALS[1:])


def findings(rows: dict) -> list[str]:
    """What the table says, computed from it: each variant against the plain recipe at the same
    budget (scratch variants against plain, warm starts against shipped), and which row
    train_defaults.toml's recipe is."""
    from samedge.train import load_config

    lines = []
    for name, row in rows.items():
        reference = "shipped" if VARIANTS[name][1] in (None, "shipped") else "plain"
        if name == reference or reference not in rows:
            continue
        ref = rows[reference]
        lines.append(f"- {name} against {reference}: transfer {transfer_score(row) - transfer_score(ref):+.1f}, "
                     f"renamed {row['scores'][EVALS[1]]['f1'] - ref['scores'][EVALS[1]]['f1']:+.1f}, "
                     f"in-domain {row['scores'][EVALS[0]]['f1'] - ref['scores'][EVALS[0]]['f1']:+.1f}.")
    if rows:
        config = load_config()
        default = {k: config[k] for k in VARIANTS["plain"][0]}
        best = max(rows, key=lambda n: transfer_score(rows[n]))
        matches = [n for n in rows if VARIANTS[n][0] == default]
        lines.append(f"- Best transfer: {best}. train_defaults.toml's recipe ("
                     + ", ".join(f"{k}={v}" for k, v in default.items())
                     + f") is the recipe of {' / '.join(matches) or 'none of these rows'}.")
    return lines


def report(data: dict) -> str:
    cfg = data["config"]
    rows = []
    for name in VARIANTS:
        r = data["rows"].get(name)
        if not r:
            continue
        f1s = [r["scores"][e]["f1"] for e in EVALS]
        transfer = transfer_score(r)
        keys, start, own = VARIANTS[name]
        how = {None: "as shipped (300 steps, plain, stored at rank 6)", "scratch": f"from scratch, {cfg['steps']} steps",
               "shipped": f"shipped expert + {own} steps"}[start]
        rows.append([name, how, ", ".join(f"{k}={v}" for k, v in keys.items())] + f1s
                    + [f"{transfer:.1f}"])
    return "\n".join([
        "## Training recipe (dev splits only)",
        "",
        f"`{COMMAND}` — {data['started']}, {data['machine']['cpu']}, {data['machine']['cores']} cores, "
        f"load at start {fmt_load(data['machine']['load_at_start'])}.",
        "",
        f"Each variant trains the {SOURCE} expert (from scratch for {cfg['steps']} steps x batch 8, or from the "
        f"shipped 300-step expert; same seed and batches; only the recipe differs), then is scored with llama.cpp (runtime LoRA, Q8_0 base) on the first "
        f"{cfg['dev']} dev sentences of each set. *renamed* asks CoNLL's types as "
        + ", ".join(f"'{v}'" for v in HELD_OUT_NAMES.values())
        + " (same descriptions; no recipe shows these names). *transfer* is the mean of the columns the "
        f"expert was not trained on ({', '.join(e.removeprefix('conll2003 ') for e in EVALS[1:])}). "
        "Entity-level micro F1.",
        "",
        table(["variant", "training", "recipe keys", *EVALS, "transfer"], rows),
        "",
        *findings(data["rows"]),
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--dev", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-only", action="store_true", help="train the variants, score nothing")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    if args.report_only:  # never State(...) here: it would start a new run over the finished one
        publish(NAME, report(State.last(STATE)), write=not args.no_write)
        return 0
    state = State(STATE, {"steps": args.steps, "dev": args.dev})
    data = state.data
    import time
    sets = None
    for name in args.variants:
        if name in data["rows"]:
            continue
        started = time.time()
        folder = train_variant(name, args.steps, args.threads)
        seconds = round(time.time() - started)
        if args.train_only:
            continue
        sets = sets or eval_sets(args.dev)
        data["rows"][name] = {"scores": score_variant(folder, sets, args.threads), "seconds": seconds,
                              "load": load_average()}
        state.save()
        print(name, data["rows"][name], flush=True)
    publish(NAME, report(data), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
