"""Accuracy of SaM against the unified model and the other baselines (entity-level micro F1).

    python benchmarks/accuracy.py tune                 # merge weighting rule, chosen on dev instances
    python benchmarks/accuracy.py P                    # protocol P: CrossNER + MIT targets, P-source library
    python benchmarks/accuracy.py N                    # protocol N: the 9 added domains, the original 15 as library
    python benchmarks/accuracy.py agreement            # labeled F1 vs vote vs pairwise agreement as rankers
    python benchmarks/accuracy.py L                    # leave one domain out, every shared domain
    python benchmarks/accuracy.py quant methods        # Q8_0/f16/Q4_K_M and linear/TIES/DARE-TIES for SaM
    python benchmarks/accuracy.py scalability          # F1 as the library grows and shrinks (PNG plot)
    python benchmarks/accuracy.py --report-only        # rewrite BENCHMARKS.md from the cached results

Every (study, target, row) result is cached in runs/accuracy/ under a key of everything it depends
on (test sentences, the adapters' sha256s, options), so an interrupted run resumes where it stopped
and a retrained expert invalidates only the rows that used it. Partial results are reported with
their status.

Targets are built the way a user would: from the domain's unlabeled train texts (similarity) and at
most 32 labeled dev instances (performance criterion; the unlabeled SaM row uses expert agreement on
train texts instead). Test sentences are ``--test`` (default 200) drawn from the test split with a fixed seed. Nothing here is tuned
on test: k=3, TIES and the softmax temperature are samedge's defaults, fixed before these runs.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import expert_runner, fmt_load, load_average, now, table, write_section  # noqa: E402
from samedge.data.protocols import ALL as ALL_DOMAINS, N_TARGETS, P_SOURCES, P_TARGETS, library_for  # noqa: E402

WORK = REPO / "runs" / "accuracy"
UNIFIED = REPO / "runs" / "unified"
DEV_LABELED = 32
# Bumped when samedge's agreement rule changes, so that unlabeled results are measured again.
AGREEMENT_RULE = "abstainers-score-0"
TARGET_TEXTS = 256
SCALING_TARGETS = ["crossner_ai", "crossner_music", "mit_restaurant"]
SCALING_SIZES = [("grow", 2), ("grow", 4), ("grow", 8), ("shrink", 4), ("shrink", 2)]
PUBLIC = {"UniNER-7B": 53.7, "GLiNER-L": 60.9, "B2NER": 72.1}

# Each row is a build of one bundle (options for samedge.build.BuildOptions) or a special case.
SAM = dict(selection="combined")
ROWS = {
    "sam_default": ("SaM, default build (texts and labels only)", dict(labeled=False)),
    "sam": ("SaM with 32 labeled dev instances", SAM),
    "sam_unlabeled": ("SaM, no labels (agreement)", dict(SAM, labeled=False)),
    "ensemble": ("SaM --ensemble (union)", dict(ensemble="union")),
    "similarity": ("similarity-only selection", dict(selection="similarity")),
    "performance": ("performance-only selection", dict(selection="performance")),
    "unified": ("unified model", "unified"),
    "best_single": ("best single expert (oracle on test)", "singles"),
    "mean_single": ("mean of single experts", "singles"),
    "all_experts": ("all experts, uniform average merge", dict(selection="similarity", k="all",
                                                               weighting="uniform", method="linear")),
    "base": ("base model, no adapter", "base"),
    "in_domain": ("in-domain expert (upper bound)", "in_domain"),
    "spacy": ("spaCy en_core_web_sm, types mapped on train (peer)", "spacy"),
}
P_ROWS = [r for r in ROWS if r != "in_domain"]
# Protocol L has the rows the issue asks for: no unlabeled SaM row (it doubles the selection cost).
L_ROWS = [r for r in ROWS if r not in ("sam_unlabeled", "spacy")]
N_ROWS = [r for r in ROWS if r not in ("in_domain", "sam_unlabeled", "unified")]
BOOTSTRAP_SAMPLES = 1000


def unified_name(study: str, target: str, available: dict) -> str:
    """The unified adapter a row compares with. Protocol L wants one trained without D: unified_L_D where
    it was trained, else, for a protocol-P target, unified_P (trained on the P sources only, so without D)."""
    if study == "P":
        return "unified_P"
    own = f"unified_L_{target}"
    if own not in available and target in P_TARGETS:
        return "unified_P"
    return own


# --- targets and data -------------------------------------------------------------------

def test_docs(domain: str, n: int) -> list[dict]:
    """``n`` test sentences drawn with a fixed seed (all when the split is smaller), in split order."""
    from samedge.data.catalog import load_split
    docs = load_split(domain, "test")
    if len(docs) <= n:
        return docs
    keep = set(random.Random(0).sample(range(len(docs)), n))
    return [d for i, d in enumerate(docs) if i in keep]


def make_target(domain: str, labeled: bool = True):
    """A target profile built from the shared domain: unlabeled train texts, <= 32 labeled dev docs."""
    from samedge.data.catalog import get_domain, load_split
    from samedge.files import atomic_write_text
    from samedge.library import catalog_texts
    from samedge.targets import Target

    spec = get_domain(domain)
    texts = catalog_texts(domain)
    texts = random.Random(0).sample(texts, min(TARGET_TEXTS, len(texts)))
    dev = None
    if labeled:
        docs = load_split(domain, "dev")
        docs = random.Random(0).sample(docs, min(DEV_LABELED, len(docs)))
        dev = WORK / "dev" / f"{domain}.jsonl"
        dev.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dev, "".join(json.dumps(d) + "\n" for d in docs))
    return Target(domain, spec.description, spec.labels, texts, dev)


def fingerprint(experts) -> str:
    parts = sorted(f"{e.name}:{e.manifest['files']['adapter_model.safetensors']}" for e in experts)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def score(docs, preds) -> dict:
    """Micro P/R/F1, and each document's (tp, fp, fn) for the bootstrap intervals."""
    from samedge.evaluate import score_documents
    m = score_documents(docs, preds).micro
    per_doc = []
    for g, p in zip(docs, preds):
        d = score_documents([g], [p]).micro
        per_doc.append([d.tp, d.fp, d.fn])
    return {"f1": round(100 * m.f1, 2), "precision": round(100 * m.precision, 2), "recall": round(100 * m.recall, 2),
            "per_doc": per_doc}


def bootstrap_average(per_target: list[list], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% interval of the average micro F1 over targets, resampling each target's test sentences."""
    import numpy as np

    rng = np.random.default_rng(seed)
    averages = np.zeros(samples)
    for counts in per_target:
        counts = np.asarray(counts, dtype=float).reshape(-1, 3)
        picks = rng.integers(0, len(counts), size=(samples, len(counts)))
        tp, fp, fn = (counts[:, i][picks].sum(axis=1) for i in range(3))
        denom = 2 * tp + fp + fn
        averages += np.where(denom > 0, 200 * tp / np.maximum(denom, 1), 0.0)
    averages /= len(per_target)
    return float(np.percentile(averages, 2.5)), float(np.percentile(averages, 97.5))


def bootstrap_difference(per_target_a: list[list], per_target_b: list[list], samples: int = BOOTSTRAP_SAMPLES,
                         seed: int = 0) -> tuple[float, float]:
    """95% interval of (average F1 of b) - (average F1 of a), both scored on the same sentences:
    each resample picks the same sentences for both rows (a paired bootstrap)."""
    import numpy as np

    def f1(counts, picks):
        tp, fp, fn = (counts[:, i][picks].sum(axis=1) for i in range(3))
        denom = 2 * tp + fp + fn
        return np.where(denom > 0, 200 * tp / np.maximum(denom, 1), 0.0)

    rng = np.random.default_rng(seed)
    diffs = np.zeros(samples)
    for a, b in zip(per_target_a, per_target_b):
        a, b = (np.asarray(c, dtype=float).reshape(-1, 3) for c in (a, b))
        picks = rng.integers(0, len(a), size=(samples, len(a)))
        diffs += f1(b, picks) - f1(a, picks)
    diffs /= len(per_target_a)
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


# --- one row ------------------------------------------------------------------------------

class Runner:
    def __init__(self, args):
        from samedge.base import provision
        from samedge.library import Library, load_expert

        self.args = args
        self.missing = 0  # results not available yet (not run, or --report-only)
        self.base = provision()
        self.library = Library.open(None).experts(verify=True)
        self.unified = {}
        for folder in sorted(UNIFIED.glob("unified_*")):
            if (folder / "expert.json").exists():
                self.unified[folder.name] = load_expert(folder)

    def experts_for(self, study: str, target: str, only=None):
        names = only if only is not None else library_for(study, target)
        return [e for e in self.library if e.name in names]

    def cached(self, study: str, target: str, row: str, key: dict, compute, row_kind: str | None = None):
        path = WORK / "results" / study / target / f"{row}.json"
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        if path.exists():
            got = json.loads(path.read_text())
            if got.get("key") == digest:
                return got
        if self.args.report_only or (self.args.rows and (row_kind or row) not in self.args.rows):
            self.missing += 1
            return None
        started = time.time()
        load = load_average()
        print(f"[{now()}] {study} {target} {row} ...", flush=True)
        result = compute()
        result.update(key=digest, seconds=round(time.time() - started, 1),
                      load=f"{fmt_load(load)} -> {fmt_load(load_average())}", measured=now())
        from samedge.files import atomic_write_json
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, result)
        print(f"    {row}: F1 {result.get('f1')}  ({result['seconds']} s)", flush=True)
        return result

    def evaluate_bundle(self, bundle: Path, docs) -> dict:
        from samedge.bundle import load_extractor
        extractor = load_extractor(bundle, threads=self.args.threads)
        preds = extractor.extract_many([d["text"] for d in docs], ids=[d["id"] for d in docs])
        del extractor
        gc.collect()
        return score(docs, preds)

    def build_and_score(self, study, target, row, options: dict, experts, docs, extra_key=None) -> dict | None:
        from samedge.build import BuildOptions, build

        options = dict(options)
        labeled = options.pop("labeled", True)
        if options.get("k") == "all":
            options["k"] = len(experts)
        key = {"row": options, "labeled": labeled, "experts": fingerprint(experts), "test": len(docs),
               "extra": extra_key}
        if not labeled:
            key["agreement"] = AGREEMENT_RULE

        def compute():
            out = WORK / "bundles" / study / target / row
            opts = BuildOptions(target=make_target(target, labeled), library=None, only=tuple(e.name for e in experts),
                                threads=self.args.threads, force=True, **options)
            manifest = build(opts, out, log=lambda msg: None, runner=expert_runner())
            result = self.evaluate_bundle(out, docs)
            merges = [manifest["merge"]] + ([manifest["ensemble"]["merge_b"]] if "ensemble" in manifest else [])
            result["selected"] = [[(e["name"], round(e["weight"], 3)) for e in m["experts"]] for m in merges]
            result["build_seconds"] = sum(manifest["timings"].values())
            return result

        return self.cached(study, target, row, key, compute)

    def singles(self, target, experts, docs) -> dict | None:
        """Each expert alone on the test docs. Cached per expert (by its sha256), shared by every study,
        so retraining one expert re-measures only that expert."""
        from samedge.data.catalog import get_domain

        run_experts = expert_runner()
        got = {}
        for e in experts:
            def compute(e=e):
                preds = run_experts({e.name: {"expert": e}}, get_domain(target).labels, docs, self.base,
                                    threads=self.args.threads)
                return score(docs, preds[e.name])

            key = {"expert": e.manifest["files"]["adapter_model.safetensors"], "test": len(docs)}
            got[e.name] = self.cached("singles", target, f"single_{e.name}", key, compute, row_kind="singles")
        if any(r is None for r in got.values()):
            return None
        return {"experts": got}

    def base_row(self, study, target, docs) -> dict:
        from samedge.data.catalog import get_domain
        from samedge.extract import Extractor
        from samedge.extract.engines.llama import LlamaEngine
        from samedge.select.runner import scoring_base

        def compute():
            engine = LlamaEngine(scoring_base(self.base), threads=self.args.threads, n_seq=8, n_ctx=1024)
            try:
                preds = Extractor(engine, get_domain(target).labels).extract_many(
                    [d["text"] for d in docs], ids=[d["id"] for d in docs])
            finally:
                engine.close()
            return score(docs, preds)

        return self.cached("base", target, "base", {"base": self.base.base_id, "test": len(docs)}, compute)

    def spacy_row(self, target, docs) -> dict | None:
        def compute():
            from benchmarks.peer_spacy import MODEL, peer_row
            got = peer_row(target, docs)
            return dict(score(docs, got["preds"]), sentences_per_s=got["sentences_per_s"], mapping=got["mapping"],
                        model=MODEL)

        return self.cached("peer", target, "spacy", {"peer": "en_core_web_sm 3.8.0", "test": len(docs)}, compute,
                           row_kind="spacy")

    def row(self, study: str, target: str, row: str) -> dict | None:
        docs = test_docs(target, self.args.test)
        experts = self.experts_for(study, target)
        kind = ROWS[row][1]
        if kind == "singles":
            got = self.singles(target, experts, docs)
            if not got:
                return None
            f1s = {n: r["f1"] for n, r in got["experts"].items()}
            if row == "best_single":
                best = max(f1s, key=f1s.get)
                return {"f1": f1s[best], "selected": [[(best, 1.0)]], "per_doc": got["experts"][best].get("per_doc")}
            return {"f1": round(sum(f1s.values()) / len(f1s), 2)}
        if kind == "base":
            return self.base_row(study, target, docs)
        if kind == "spacy":
            return self.spacy_row(target, docs)
        if kind == "unified":
            name = unified_name(study, target, self.unified)
            unified = self.unified.get(name)
            if unified is None:
                if study != "L":  # protocol L asks for unified adapters on some domains only (the section names them)
                    self.missing += 1
                return None
            from samedge.build import BuildOptions, build
            key = {"unified": unified.manifest["files"], "test": len(docs)}

            def compute():
                out = WORK / "bundles" / "unified" / target / name
                build(BuildOptions(target=make_target(target, False), library=str(UNIFIED), only=(name,), k=1,
                                   method="linear", threads=self.args.threads, force=True), out, log=lambda m: None,
                      runner=expert_runner())
                return self.evaluate_bundle(out, docs)

            return self.cached("unified", target, name, key, compute, row_kind="unified")
        if kind == "in_domain":
            own = [e for e in self.library if e.name == target]
            if not own:
                return None
            return self.build_and_score(study, target, row, dict(selection="similarity", k=1, method="linear"),
                                        own, docs)
        return self.build_and_score(study, target, row, kind, experts, docs)


# --- studies ----------------------------------------------------------------------------

def main_table(runner, study: str, targets: list[str], rows: list[str]) -> tuple[str, dict]:
    results = {t: {r: runner.row(study, t, r) for r in rows} for t in targets}
    headers = ["row"] + targets + ["average", "95% interval"]
    lines, averages = [], {}
    for r in rows:
        f1s = [results[t][r]["f1"] if results[t][r] else None for t in targets]
        done = [f for f in f1s if f is not None]
        avg = round(sum(done) / len(done), 2) if len(done) == len(targets) else None
        averages[r] = avg
        avg_cell = f"{avg:.1f}" if avg is not None else (f"({sum(done) / len(done):.1f}, {len(done)}/{len(targets)})"
                                                           if done else "-")
        counts = [results[t][r].get("per_doc") for t in targets if results[t][r]]
        interval = "-"
        if avg is not None and len(counts) == len(targets) and all(counts):
            lo, hi = bootstrap_average(counts)
            interval = f"{lo:.1f}-{hi:.1f}"
        name = f"**{ROWS[r][0]}**" if r in ("sam", "sam_default") else ROWS[r][0]
        lines.append([name] + [f"{f:.1f}" if f is not None else "-" for f in f1s] + [avg_cell, interval])
    return table(headers, lines), {"results": results, "averages": averages}


def selections(results: dict, row: str = "sam") -> str:
    out = []
    for target, rows in results.items():
        got = rows.get(row)
        if got and got.get("selected"):
            picks = "; ".join(", ".join(f"{n} {w:.2f}" for n, w in m) for m in got["selected"])
            out.append(f"  - {target}: {picks}")
    return "\n".join(out)


def study_p(runner) -> str:
    tab, info = main_table(runner, "P", runner.args.targets or P_TARGETS, P_ROWS)
    avg = info["averages"]
    library = [e.name for e in runner.experts_for("P", P_TARGETS[0])]
    missing = [d for d in P_SOURCES if d not in library]
    lines = ["## Accuracy, protocol P (the paper's setting)", "",
             f"Targets: CrossNER and MIT; library: the {len(library)} shipped experts of P's source domains "
             f"({', '.join(library)}; {', '.join(missing) or 'none'} not shipped). "
             f"Test: {runner.args.test} test sentences per target (fixed seed). Entity-level micro F1 (exact span and type), "
             f"Q8_0 bundles, greedy, llama.cpp.", "", tab, ""]
    if avg.get("sam") and avg.get("unified"):
        ratio = avg["sam"] / avg["unified"] if avg["unified"] else float("inf")
        lines.append(f"- SaM / unified = **{ratio:.2f}x** (goal >= 1.10x: {'met' if ratio >= 1.10 else 'not met'}).")
        unified = runner.unified.get("unified_P")
        steps = {e.name: e.manifest["training"]["steps"] for e in runner.experts_for("P", P_TARGETS[0])}
        if unified is not None:
            lines.append(f"- Training: P-source experts {', '.join(f'{n} {s}' for n, s in sorted(steps.items()))} "
                         f"steps; the unified adapter {unified.manifest['training']['steps']} steps over the union "
                         f"of the {len(steps)} sources (the same total budget as 300-step experts).")
        if ratio < 1.10:
            lines.append("- Why SaM trails: the unified adapter learned every source's label set in one adapter; SaM "
                         "merges 3 experts (TIES, density 0.5, uniform weights), and each keeps only part of its "
                         f"delta in the merge (the all-experts row: a linear merge of all {len(library)}, "
                         f"1/{len(library)} each).")
    if avg.get("unified") is None:
        lines.append(f"- No unified row: `runs/unified/unified_P` is not trained on this machine. It needs the "
                     f"{len(library)} source domains x 300 steps in one adapter "
                     f"(`python scripts/train_library.py --unified P`).")
    lines += _compare(avg, ("sam_default", "sam"), ("spacy", "best_single", "all_experts", "base"))
    lines += ["- Public 7-dataset averages on these targets, for scale (7B-class models, not our 135M base): "
              + ", ".join(f"{k} {v}" for k, v in PUBLIC.items()) + ".",
              *_selection_lines(info["results"]), "",
              "Reproduce: `python benchmarks/accuracy.py P --test %d`." % runner.args.test]
    return "\n".join(lines)


def _selection_lines(results: dict) -> list[str]:
    """The experts SaM merged for each target: the labeled row's where it is measured, else the default build's."""
    for row, how in (("sam", "combined: top 2k by similarity, then top k by F1 on 32 dev instances"),
                     ("sam_default", "default build: top 2k by similarity, then top k by agreement on target texts")):
        listed = selections(results, row)
        if listed:
            return [f"- SaM's experts and weights ({how}):", listed]
    return []


def _compare(averages: dict, rows, others) -> list[str]:
    """One line per (row, other) pair whose averages are both measured: above or not."""
    return [f"- {ROWS[row][0]} {averages[row]:.1f} vs {ROWS[other][0]} {averages[other]:.1f}: "
            f"{'above' if averages[row] > averages[other] else 'not above'}."
            for other in others for row in rows
            if averages.get(row) is not None and averages.get(other) is not None]


def study_n(runner) -> str:
    targets = runner.args.targets or N_TARGETS
    tab, info = main_table(runner, "N", targets, N_ROWS)
    avg = info["averages"]
    lines = ["## Accuracy, protocol N (new domains, nobody tuned on them)", "",
             f"Targets: the {len(N_TARGETS)} domains added on 2026-12-02; library: the original "
             f"{len(runner.experts_for('N', N_TARGETS[0]))} experts. Test: {runner.args.test} test sentences per "
             "target drawn with a fixed seed (all when fewer). Entity-level micro F1 (exact span and type), Q8_0 bundles, greedy, llama.cpp. "
             f"The interval is a 95% bootstrap over each target's test sentences ({BOOTSTRAP_SAMPLES} resamples). "
             "*Default build*: `samedge build --labels ... --texts ...` with every default (no labeled data); "
             "*with 32 labeled dev instances*: combined selection scored on the target's dev split. The spaCy row maps "
             "each en_core_web_sm type to the target label it most often matches exactly on the target's train split.",
             "", tab, ""]
    lines += _compare(avg, ("sam_default", "sam"), ("spacy", "best_single", "all_experts", "base"))
    lines += ["- No unified adapter for N yet: it needs the 15 original domains x 300 steps in one adapter "
              "(about 5 h on this 2-core CPU; minutes on a GPU): `python scripts/train_library.py --unified N`.",
              "- SaM's experts and weights (default build):", selections(info["results"], "sam_default"), "",
              "Reproduce: `python benchmarks/accuracy.py N --test %d`." % runner.args.test]
    return "\n".join(lines)


def study_l(runner) -> str:
    targets = runner.args.targets or ALL_DOMAINS
    tab, info = main_table(runner, "L", targets, L_ROWS)
    used = {t: unified_name("L", t, runner.unified) for t in targets}
    with_unified = [t for t in targets if used[t] in runner.unified]
    return "\n".join([
        "## Accuracy, protocol L (leave one domain out)", "",
        f"For each shared domain D: the shipped library without D's expert ({len(runner.library)} shipped, "
        f"so {len(runner.library) - 1} where D has one), "
        f"test: {runner.args.test} test sentences of D (fixed seed). The unified row needs an adapter trained without D: "
        f"{', '.join(f'{t} ({used[t]})' for t in with_unified) or 'none yet'}; "
        "`unified_P` was trained on the 8 P sources only, so it never saw a P target. Other domains show \"-\".",
        "", tab, "", *_l_against_unified(info["results"], with_unified),
        "Reproduce: `python benchmarks/accuracy.py L --test %d`." % runner.args.test])


def _l_against_unified(results: dict, targets: list[str]) -> list[str]:
    """SaM against the unified adapter on the domains that have one (the average row needs all 15)."""
    pairs = [(results[t]["sam"]["f1"], results[t]["unified"]["f1"]) for t in targets
             if results[t].get("sam") and results[t].get("unified")]
    if not pairs or len(pairs) < len(targets):
        return []
    sam, unified = (sum(x) / len(pairs) for x in zip(*pairs))
    ratio = f"{sam / unified:.2f}x" if unified else "n/a"
    return [f"- On the {len(pairs)} domains with a unified row: SaM {sam:.1f} vs unified {unified:.1f} ({ratio}).", ""]


def study_variants(runner, name: str, variants: dict, targets) -> str:
    rows = []
    for label, options in variants.items():
        f1s = []
        for target in targets:
            docs = test_docs(target, runner.args.test)
            row = f"{name}_{label}" if options else "sam"  # the default variant is protocol P's SaM row
            got = runner.build_and_score("P", target, row, dict(SAM, **options), runner.experts_for("P", target), docs)
            f1s.append(got["f1"] if got else None)
        done = [f for f in f1s if f is not None]
        avg = f"{sum(done) / len(done):.1f}" if len(done) == len(f1s) else "-"
        rows.append([label] + [f"{f:.1f}" if f is not None else "-" for f in f1s] + [avg])
    return table([name] + list(targets) + ["average"], rows)


def study_quant(runner) -> str:
    variants = {"f16": {"quant": "f16"}, "q8_0": {}, "q4_k_m": {"quant": "q4_k_m"}}
    return "\n".join(["## Quantization cost (SaM bundles, protocol P)", "",
                      study_variants(runner, "quant", variants, runner.args.targets or SCALING_TARGETS), "",
                      "Reproduce: `python benchmarks/accuracy.py quant --test %d`." % runner.args.test])


def study_methods(runner) -> str:
    variants = {"linear": {"method": "linear"}, "ties": {}, "dare_ties": {"method": "dare_ties"}}
    return "\n".join(["## Merge methods (SaM selection, protocol P)", "",
                      study_variants(runner, "method", variants, runner.args.targets or SCALING_TARGETS), "",
                      "Reproduce: `python benchmarks/accuracy.py methods --test %d`." % runner.args.test])


def study_scalability(runner) -> str:
    targets = runner.args.targets or SCALING_TARGETS
    series = {t: [] for t in targets}
    for target in targets:
        docs = test_docs(target, runner.args.test)
        for phase, size in SCALING_SIZES:
            only = P_SOURCES[:size]
            experts = runner.experts_for("P", target, only=only)
            if size == len(P_SOURCES):  # the whole library: protocol P's SaM row
                got = runner.build_and_score("P", target, "sam", SAM, experts, docs)
            else:  # the phase is in the key: shrinking really rebuilds, so equal F1 shows removal is exact
                got = runner.build_and_score("S", target, f"{phase}{size}", SAM, experts, docs, extra_key=phase)
            series[target].append(got["f1"] if got else None)
    labels = [f"{p} {n}" for p, n in SCALING_SIZES]
    rows = [[t] + [f"{f:.1f}" if f is not None else "-" for f in series[t]] for t in targets]
    same = _shrunk_bundles_identical(targets)
    plot = REPO / "benchmarks" / "scalability.png"
    if all(f is not None for fs in series.values() for f in fs):
        _plot(series, labels, plot)
    return "\n".join([
        "## Scalability: F1 as the library grows and shrinks", "",
        f"SaM (combined, k=3) on {len(targets)} protocol-P targets; the library is the first n of "
        f"{', '.join(P_SOURCES)}, grown to 8 and shrunk again by removing experts (no retraining). "
        f"Shrinking rebuilds from scratch; equal F1 at equal size shows that removal is exact.", "",
        f"- model.gguf after shrinking is byte-identical to the one built while growing, at the same size: "
        f"{same[0]}/{same[1]} (target, size) pairs (sha256 in bundle.json).", "",
        table(["target"] + labels, rows), "", f"![scalability](benchmarks/{plot.name})", "",
        "Reproduce: `python benchmarks/accuracy.py scalability --test %d`." % runner.args.test])


def _shrunk_bundles_identical(targets) -> tuple[int, int]:
    """(identical, compared): model.gguf sha256 of each shrink bundle against the grow bundle of its size."""
    same = compared = 0
    for target in targets:
        for phase, size in SCALING_SIZES:
            grown = WORK / "bundles" / "S" / target / f"grow{size}" / "bundle.json"
            shrunk = WORK / "bundles" / "S" / target / f"shrink{size}" / "bundle.json"
            if phase == "shrink" and grown.exists() and shrunk.exists():
                compared += 1
                same += (json.loads(grown.read_text())["files"]["model.gguf"]
                         == json.loads(shrunk.read_text())["files"]["model.gguf"])
    return same, compared


def _plot(series: dict, labels: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for target, f1s in series.items():
        ax.plot(range(len(labels)), f1s, marker="o", label=target)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("library (phase, experts)")
    ax.set_ylabel("micro F1")
    ax.set_title("SaM F1 as the expert library grows and shrinks")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


# Build defaults, chosen on dev splits (never test): 2 protocol-P and 3 protocol-N targets. snips2017
# was dropped after every variant scored 0.0 on it (no expert knows its types: it cannot rank them).
DEFAULTS_TARGETS = ["crossner_ai", "crossner_politics", "finer_ord", "litbank", "bc2gm"]
DEFAULTS_DEV = 64
DEFAULTS_VARIANTS = {  # label -> (build options, labeled dev instances for selection?)
    "similarity, k=3, TIES": (dict(selection="similarity", k=3), False),
    "similarity, k=1": (dict(selection="similarity", k=1, method="linear"), False),
    "combined (agreement), k=3, TIES": (dict(selection="combined", k=3), False),
    "combined (agreement), k=auto, TIES": (dict(selection="combined", k="auto"), False),
    "combined (agreement), k=1": (dict(selection="combined", k=1, method="linear"), False),
    "combined (agreement), k=3, linear": (dict(selection="combined", k=3, method="linear"), False),
    "combined (agreement), k=3, TIES density 0.3": (dict(selection="combined", k=3, method_params={"density": 0.3}), False),
    "combined (agreement), k=3, TIES density 0.8": (dict(selection="combined", k=3, method_params={"density": 0.8}), False),
    "combined (agreement), k=3, TIES scale 1.5": (dict(selection="combined", k=3, method_params={"scale": 1.5}), False),
    "combined (agreement), k=3, DARE-TIES": (dict(selection="combined", k=3, method="dare_ties"), False),
    "combined (labeled), k=3, TIES": (dict(selection="combined", k=3), True),
    "combined (labeled), k=auto, TIES": (dict(selection="combined", k="auto"), True),
    "combined (labeled), k=1": (dict(selection="combined", k=1, method="linear"), True),
}


def defaults_dev_docs(target: str) -> list[dict]:
    """DEFAULTS_DEV dev sentences, disjoint from the 32 that labeled selection samples (make_target)."""
    from samedge.data.catalog import load_split
    docs = load_split(target, "dev")
    chosen = {d["id"] for d in random.Random(0).sample(docs, min(DEV_LABELED, len(docs)))}
    rest = [d for d in docs if d["id"] not in chosen]
    return random.Random(1).sample(rest, min(DEFAULTS_DEV, len(rest)))


# samedge's defaults, without and with labeled dev instances: every other variant is compared with these.
DEFAULTS_BASELINES = {False: "combined (agreement), k=3, TIES", True: "combined (labeled), k=3, TIES"}


def study_defaults(runner) -> str:
    targets = runner.args.targets or DEFAULTS_TARGETS
    got, results, averages = {}, {}, {}
    for label, (options, labeled) in DEFAULTS_VARIANTS.items():
        got[label] = []
        for target in targets:
            protocol = "P" if target in P_TARGETS else "N"
            row = "defaults_" + "".join(c if c.isalnum() else "_" for c in label)
            got[label].append(runner.build_and_score("D", target, row, dict(options, labeled=labeled),
                                                     runner.experts_for(protocol, target), defaults_dev_docs(target),
                                                     extra_key="dev"))
        results[label] = got[label] if all(got[label]) else None  # complete rows only
        averages[label] = sum(g["f1"] for g in got[label]) / len(targets) if results[label] else None
    rows, better = [], []
    for label, (options, labeled) in DEFAULTS_VARIANTS.items():
        baseline = DEFAULTS_BASELINES[labeled]
        delta = "-"
        if label == baseline:
            delta = "(default)"
        elif results[label] and results[baseline]:
            lo, hi = bootstrap_difference([g["per_doc"] for g in results[baseline]],
                                          [g["per_doc"] for g in results[label]])
            delta = f"{averages[label] - averages[baseline]:+.1f} ({lo:+.1f} .. {hi:+.1f})"
            if lo > 0:  # a default changes only for a variant whose whole interval lies above it
                better.append(label)
        rows.append([label] + [f"{g['f1']:.1f}" if g else "-" for g in got[label]]
                    + [f"{averages[label]:.1f}" if averages[label] is not None else "-", delta])
    lines = ["## Build defaults, chosen on dev", "",
             f"Each variant builds a bundle for each target (library: the protocol's, P or N) and is scored on "
             f"{DEFAULTS_DEV} **dev** sentences per target, disjoint from the 32 dev instances that labeled selection "
             "samples (agreement variants use unlabeled train texts only). No test data. Entity-level micro F1.", "",
             table(["variant"] + list(targets) + ["average", "vs the default (95% paired interval)"], rows), "",
             "The last column is the variant's average minus the default's (combined, k=3, TIES; labeled "
             "variants against its labeled form), with a 95% paired bootstrap interval over the dev sentences "
             "(the same resampled sentences for both rows): an interval that contains 0 is not a measured "
             "difference.", ""]
    for labeled in (False, True):
        done = {k: v for k, v in averages.items() if v is not None and DEFAULTS_VARIANTS[k][1] == labeled}
        if done:
            best = max(done, key=done.get)
            lines.append(f"- Best {'with' if labeled else 'without'} labeled dev instances: {best} ({done[best]:.1f}).")
    if all(results[b] for b in DEFAULTS_BASELINES.values()):
        lines.append("- Variants measured better than the default (interval above 0): "
                     + (", ".join(better) if better else "none, so the defaults stay: combined selection, k=3, TIES "
                        "(density 0.5, scale 1), uniform weights."))
    measured = sorted(g["measured"] for res in results.values() if res for g in res if g.get("measured"))
    if measured:
        lines.append(f"- Measured {measured[0]} - {measured[-1]}, with the expert library of that day.")
    lines.append("\nReproduce: `python benchmarks/accuracy.py defaults`.")
    return "\n".join(lines)


TUNE_VARIANTS = {
    "softmax T=0.05": dict(weighting="softmax", temperature=0.05),
    "softmax T=0.2": dict(weighting="softmax", temperature=0.2),
    "normalized": dict(weighting="normalized"),
    "uniform": dict(weighting="uniform"),
}


def study_tune(runner) -> str:
    """Merge weighting chosen on dev, never on test: F1 on the 32 labeled dev instances per target."""
    from samedge.select.performance import sample_instances

    targets = runner.args.targets or P_TARGETS
    rows = []
    for label, options in TUNE_VARIANTS.items():
        f1s = []
        for target in targets:
            dev_docs, _ = sample_instances(make_target(target, True), DEV_LABELED, 0)
            row = "tune_" + label.replace(" ", "_").replace("=", "")
            got = runner.build_and_score("P", target, row, dict(selection="similarity", **options),
                                         runner.experts_for("P", target), dev_docs, extra_key="dev")
            f1s.append(got["f1"] if got else None)
        done = [f for f in f1s if f is not None]
        avg = f"{sum(done) / len(done):.1f}" if len(done) == len(f1s) else "-"
        rows.append([label] + [f"{f:.1f}" if f is not None else "-" for f in f1s] + [avg])
    return "\n".join([
        "## Merge weighting, chosen on dev", "",
        f"Similarity selection (k=3, TIES) of the P-source experts, merge weights from the similarity scores by each "
        f"rule; F1 on the {DEV_LABELED} sampled **dev** instances of each protocol-P target (no test data).", "",
        table(["weighting"] + list(targets) + ["average"], rows), "",
        "Reproduce: `python benchmarks/accuracy.py tune`."])


# Selection criteria compared on dev: each ranks the similarity shortlist that combined selection
# scores, and is judged by the dev F1 (on DEFAULTS_DEV other sentences) of the experts it puts first.
AGREEMENT_K = 3
AGREEMENT_SHORTLIST = 6  # 2k: combined selection's shortlist at the default k


def agreement_criteria(preds_unlabeled: dict, preds_labeled: dict, labeled_docs: list, n_labels: int,
                       similarity: dict) -> dict[str, dict[str, float]]:
    """criterion -> {expert: score} from the experts' predictions (pure): similarity, labeled F1 on the
    labeled sample, and every agreement mode on the unlabeled sample."""
    from samedge.config import AGREEMENT_MODES
    from samedge.select.performance import agreement_scores
    out = {"similarity": dict(similarity),
           "labeled F1": {n: score(labeled_docs, p)["f1"] for n, p in preds_labeled.items()}}
    for mode in AGREEMENT_MODES:
        out[mode] = {n: round(100 * v, 2) for n, v in agreement_scores(preds_unlabeled, mode, n_labels).items()}
    return out


def study_agreement(runner) -> str:
    """Which criterion picks the experts that do best on dev: labeled F1, similarity, or an agreement mode.
    Dev splits only: the criteria see the build's own samples, the judge is other dev sentences."""
    from samedge.config import AGREEMENT_MODES, build_default
    from samedge.select.pipeline import select_experts
    from samedge.select.registry import ranking
    from samedge.select.performance import DEFAULT_AGREEMENT, labels_for_experts, retag_gold, sample_instances

    run_experts = expert_runner()
    targets = runner.args.targets or (P_TARGETS + N_TARGETS)
    per_target, rows = {}, []
    for target in targets:
        protocol = "P" if target in P_TARGETS else "N"
        experts = runner.experts_for(protocol, target)
        unlabeled_target, labeled_target = make_target(target, False), make_target(target, True)
        labels = unlabeled_target.labels

        def compute():
            by_similarity = select_experts(unlabeled_target, experts, k=AGREEMENT_SHORTLIST, strategy="similarity",
                                           threads=runner.args.threads)
            shortlist = {e.name: {"expert": e} for e in experts if e.name in by_similarity.selected_names()}
            ask = labels_for_experts(shortlist, labels, build_default("align_threshold"), runner.args.threads)
            samples = {"unlabeled": sample_instances(unlabeled_target, DEV_LABELED, 0)[0],
                       "labeled": retag_gold(sample_instances(labeled_target, DEV_LABELED, 0)[0], labels),
                       "judge": retag_gold(defaults_dev_docs(target), labels)}
            preds = {name: run_experts(shortlist, ask, docs, runner.base, threads=runner.args.threads)
                     for name, docs in samples.items()}
            return {"similarity": {e.name: round(100 * e.similarity, 2) for e in by_similarity.experts
                                   if e.name in shortlist},
                    "preds": preds, "labeled_docs": samples["labeled"],
                    "judge": {n: score(samples["judge"], p)["f1"] for n, p in preds["judge"].items()}}

        got = runner.cached("D", target, "criteria", {"experts": fingerprint(experts), "dev": DEV_LABELED,
                                                      "judge": DEFAULTS_DEV, "shortlist": AGREEMENT_SHORTLIST}, compute)
        if not got:
            runner.missing += 1
            continue
        criteria = agreement_criteria(got["preds"]["unlabeled"], got["preds"]["labeled"], got["labeled_docs"],
                                      len(labels), got["similarity"])
        judge = got["judge"]
        criteria["oracle (dev judge)"] = judge
        per_target[target] = {c: sum(judge[n] for n in ranking(sc)[:AGREEMENT_K]) / AGREEMENT_K
                              for c, sc in criteria.items()}
        rows.append([target, ", ".join(f"{n} {judge[n]:.0f}" for n in ranking(judge)[:AGREEMENT_K])]
                    + [f"{per_target[target][c]:.1f}" for c in criteria])
    if not rows:
        return "## Selection criteria, on dev\n\nNo results yet: `python benchmarks/accuracy.py agreement`."
    names = list(next(iter(per_target.values())))
    means = {c: sum(t[c] for t in per_target.values()) / len(per_target) for c in names}
    rows.append(["**average**", ""] + [f"**{means[c]:.1f}**" for c in names])
    unlabeled = {mode: means[mode] for mode in AGREEMENT_MODES}
    best = max(unlabeled, key=unlabeled.get)
    return "\n".join([
        "## Selection criteria, on dev: which experts each one puts first", "",
        f"For each protocol-P and protocol-N target, the {AGREEMENT_SHORTLIST} experts that combined selection "
        f"shortlists by similarity decode the build's own samples: {DEV_LABELED} unlabeled train texts (the "
        f"agreement modes) and {DEV_LABELED} labeled dev instances (labeled F1), asked under aligned label names as "
        f"a build asks them. Each criterion's top {AGREEMENT_K} is judged by those experts' mean F1 alone on "
        f"{DEFAULTS_DEV} other dev sentences (the `defaults` study's sentences). No test data. The oracle row "
        "ranks by the judge itself: the ceiling.", "",
        table(["target", "best 3 on the judge (F1)"] + names, rows), "",
        "- Agreement modes (select/performance.py): `vote` majority of the experts that found anything in the "
        "document; `vote_all` majority of all experts that found anything in the sample; `vote_coverage` vote "
        "times the square root of the share of the target's labels the expert used; `pairwise` mean F1 against "
        "each other expert.",
        f"- Best unlabeled criterion: {best} ({means[best]:.1f}); the build's default is {DEFAULT_AGREEMENT} "
        f"({means[DEFAULT_AGREEMENT]:.1f}); labeled F1 {means['labeled F1']:.1f}; similarity alone "
        f"{means['similarity']:.1f}; ceiling {means['oracle (dev judge)']:.1f}.",
        "", "Reproduce: `python benchmarks/accuracy.py agreement`."])


STUDIES = {"tune": study_tune, "defaults": study_defaults, "P": study_p, "N": study_n, "agreement": study_agreement, "L": study_l, "quant": study_quant,
           "methods": study_methods, "scalability": study_scalability}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("studies", nargs="*", help=f"some of {', '.join(STUDIES)} (default: all, in the order "
                    "P, agreement, quant, methods, scalability, L)")
    ap.add_argument("--test", type=int, default=200, help="test sentences per target")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--targets", nargs="*", help="only these targets (default: each study's own list)")
    ap.add_argument("--no-write", action="store_true", help="print the tables, leave BENCHMARKS.md as it is")
    ap.add_argument("--report-only", action="store_true", help="only rewrite BENCHMARKS.md from cached results")
    ap.add_argument("--rows", nargs="*", help=f"compute only these rows ({', '.join(ROWS)}, or singles for both "
                    "single-expert rows); the others are reported from the cache")
    args = ap.parse_args(argv)
    studies = args.studies or ["P", "agreement", "quant", "methods", "scalability", "L"]
    unknown = set(studies) - set(STUDIES)
    if unknown:
        ap.error(f"unknown studies {sorted(unknown)}; choose from {', '.join(STUDIES)}")
    runner = Runner(args)
    for name in studies:
        runner.missing = 0
        body = STUDIES[name](runner)
        status = "complete" if not runner.missing else f"partial, {runner.missing} results still to run"
        if not args.no_write:
            write_section(f"accuracy_{name}", body + f"\n\nStatus: {status} (updated {now()}).")
        print(body, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
