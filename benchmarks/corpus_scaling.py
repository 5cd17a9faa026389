"""Corpus extraction throughput: `extract-corpus --engine ray` (2 actors) against `samedge extract`, and a scaling model.

    python benchmarks/corpus_scaling.py [--n 2000] [--fresh] [--no-write] [--report-only]

Input: the first N CoNLL-2003 test sentences (samedge.data) as one JSONL file. Bundle: target legal
built by `samedge build` from the shipped experts, pinned to conll2003 + wnut17 (linear, k=2, Q8_0,
as tests/bundle_fixtures.py does), so that experts the background trainer adds do not change it.

Rows, each a child process, in one run (the machine's load is recorded with each):
  extract   samedge extract input.jsonl --threads 2               one process, both cores
  ray2      samedge extract-corpus --engine ray --num-actors 2    two actors, one thread each
  ray_idle  the same ray command again over the finished output   Ray's fixed cost: start, read, shuffle,
                                                                  stop, with every shard already done
The scaling model is computed from these (see the section's text). State is saved after each row in
runs/benchmarks/corpus_scaling.json, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (WORK, State, child_failed, fmt_load, isolated_home, load_average,  # noqa: E402
                               module_argv, now, run_child, table, write_section)

NAME = "corpus_scaling"
STATE = WORK / "corpus_scaling.json"
ART = WORK / "corpus_scaling"
PINNED = ("conll2003", "wnut17")
SHARD_SIZE = 64


def ensure_input(n: int) -> Path:
    from samedge.data.catalog import load_split

    path = ART / f"conll2003_test_{n}.jsonl"
    if not path.exists():
        docs = load_split("conll2003", "test")[:n]
        if len(docs) < n:
            raise SystemExit(f"conll2003 test has only {len(docs)} sentences")
        ART.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n" for d in docs))
        tmp.replace(path)
    return path


def ensure_bundle() -> Path:
    """`samedge build --target legal --k 2 --method linear` over the pinned experts, reused while they are unchanged."""
    from samedge.build import BuildOptions, build
    from samedge.library import Library

    out = ART / "bundle_legal"
    library = Library.open()
    shas = [library.get(name).manifest["files"]["adapter_model.safetensors"] for name in PINNED]
    try:
        data = json.loads((out / "bundle.json").read_text())
        if [e["sha256"]["adapter_model.safetensors"] for e in data["merge"]["experts"]] == shas:
            return out
    except (OSError, ValueError, KeyError, TypeError):
        pass
    print("building the legal bundle from the pinned experts ...", flush=True)
    build(BuildOptions(target="legal", k=2, method="linear", only=PINNED, threads=1, force=True), out,
          log=lambda m: None)
    return out


def commands(inp: Path, bundle: Path) -> list[tuple[str, list[str]]]:
    out = ART / "out"
    return [
        ("extract", module_argv("samedge", "extract", str(inp), "--bundle", str(bundle), "-o", str(out / "extract.jsonl"),
                                "--threads", "2", "--batch", "8")),
        ("ray2", module_argv("samedge", "extract-corpus", str(inp), "--bundle", str(bundle), "-o", str(out / "ray2"),
                             "--engine", "ray", "--num-actors", "2", "--threads", "1", "--batch", "8",
                             "--shard-size", str(SHARD_SIZE), "--json")),
        ("ray_idle", module_argv("samedge", "extract-corpus", str(inp), "--bundle", str(bundle), "-o",
                                 str(out / "ray2"), "--engine", "ray", "--num-actors", "2", "--threads", "1",
                                 "--batch", "8", "--shard-size", str(SHARD_SIZE), "--json")),
    ]


def records_equal() -> dict:
    out = ART / "out"
    ref = (out / "extract.jsonl").read_text(encoding="utf-8").splitlines()
    got = [line for p in sorted((out / "ray2").glob("shard-*.jsonl")) for line in p.read_text(encoding="utf-8").splitlines()]
    same = sum(a == b for a, b in zip(ref, got))
    return {"extract": len(ref), "ray": len(got), "identical": same}


def report(data: dict) -> str:
    rows = data["rows"]
    n = data["config"]["n"]
    ext, ray, idle = rows["extract"], rows["ray2"], rows["ray_idle"]
    ext_rate = n / ext["wall_s"]
    ray_rate = n / ray["wall_s"]
    summary = ray["summary"]
    shards = summary["totals"]["shards"]
    busy = summary["worker_seconds"]                 # sum over shards of the actors' time in extraction
    per_actor = n / busy                             # documents/s of one actor (1 thread) while it works
    fixed = idle["wall_s"]                           # start + read + shuffle + stop, no extraction
    parallel = busy / 2                              # the extraction itself, two actors side by side
    overhead = max(0.0, ray["wall_s"] - fixed - parallel) / shards
    eq = data.get("records", {})
    lines = ["## Corpus extraction: Ray (2 actors) against `samedge extract`",
             "",
             f"Run {data['started']} to {data.get('finished', '?')}; command `{data['command']}`; "
             f"{data['machine']['cores']} cores ({data['machine']['cpu']}), load average at each row's start below "
             f"(other jobs were training experts on the same 2 cores, so absolute rates are low; the ratios are from "
             f"one run).",
             "",
             f"Input: the first {n} CoNLL-2003 test sentences as one JSONL file. Bundle: target legal, "
             f"`samedge build --k 2 --method linear` over the shipped conll2003 and wnut17 experts, Q8_0. "
             f"Ray: local instance, 2 actors x 1 llama.cpp thread, shards of {SHARD_SIZE}.",
             ""]
    if n < 2000:
        lines += [f"**Fewer sentences than the 2,000 planned**: {n}, because the full set did not fit this "
                  f"session's time on the loaded machine (about {2000 / ext_rate / 60:.0f} minutes a row at "
                  f"the rate measured here). `python benchmarks/corpus_scaling.py --n 2000` runs the full set.", ""]
    lines += [table(["row", "wall s", "docs/s", "vs extract", "peak RSS MB (driver)", "load at start"], [
        ["samedge extract (1 process, 2 threads)", f"{ext['wall_s']:.1f}", f"{ext_rate:.2f}", "1.00",
         ext["peak_rss_mb"], ext["load"]],
        ["extract-corpus --engine ray, 2 actors", f"{ray['wall_s']:.1f}", f"{ray_rate:.2f}",
         f"{ray_rate / ext_rate:.2f}", ray["peak_rss_mb"], ray["load"]],
        ["the same, every shard already done", f"{idle['wall_s']:.1f}", "", "", idle["peak_rss_mb"], idle["load"]],
    ]), "",
        f"Records: {eq.get('identical', '?')} of {eq.get('extract', '?')} lines of the Ray shards are byte-identical "
        f"to `samedge extract`'s output ({eq.get('ray', '?')} records written). The batches are the same "
        f"(one JSONL file, shards a multiple of 16); the thread count is not (extract 2, each actor 1), and "
        f"llama.cpp's greedy answers at near-ties depend on it. With equal threads, as in tests/test_corpus.py, "
        f"the records are byte-identical.",
        "",
        "### Scaling model",
        "",
        table(["quantity", "value", "how"], [
            ["documents/s per actor (1 thread)", f"{per_actor:.2f}",
             f"{n} documents / {busy:.1f} s summed over the shards' extraction times (markers' `seconds`)"],
            ["Ray fixed cost per run", f"{fixed:.1f} s", "the ray_idle row: ray.init, read, shuffle, actor start, "
                                                         "shutdown, with nothing to extract"],
            ["Ray overhead per batch (shard)", f"{overhead:.2f} s",
             f"(ray wall - fixed - extraction/2 actors) / {shards} shards"],
        ]),
        "",
        "Expected throughput for D documents on N nodes of c cores, one 1-thread actor per core "
        "(decoding a 135M model is memory-bound: one thread per core is the most a core's share of "
        "bandwidth feeds, and nodes do not share memory bandwidth):",
        "",
        "    T(N) = fixed + D / (N c r) + (D / S) o / (N c)        throughput = D / T(N)",
        "",
        f"with r = {per_actor:.2f} docs/s per actor, o = {overhead:.2f} s per shard, S = {SHARD_SIZE} documents "
        f"a shard, fixed = {fixed:.0f} s (on a cluster add the actors' model load, paid once per actor in "
        f"parallel). For D = 1,000,000 CoNLL-length sentences and c = 2:",
        "",
        table(["nodes N", "actors", "hours", "docs/s"], [
            [nn, nn * 2, f"{_t(1e6, nn * 2, per_actor, overhead, fixed) / 3600:.1f}",
             f"{1e6 / _t(1e6, nn * 2, per_actor, overhead, fixed):.1f}"] for nn in (1, 2, 4, 8, 16, 64)]),
        "",
        "Reasoning and limits: the work is embarrassingly parallel (no state shared between shards), "
        "so it scales with the actor count until the fixed part dominates; the driver does little per "
        "document (the shuffle moves each text once, ~100 bytes for a sentence). r was measured with both "
        "cores also serving other jobs, so an idle node does better (DESIGN.md: 4.4 sentences/s with 2 threads "
        "on this machine when less loaded). Not modelled: the shuffle is a barrier (every input is read "
        "before the first shard is extracted; for a corpus far larger than the cluster's object store, "
        "split it and run per part), and a shared file system's write rate for the shards.",
    ]
    return "\n".join(lines)


def _t(docs, actors, rate, overhead, fixed):
    return fixed + docs / (actors * rate) + (docs / SHARD_SIZE) * overhead / actors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="CoNLL-2003 test sentences")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per row")
    args = ap.parse_args()
    if args.report_only:
        data = State.last(STATE)
        if not data or not data.get("complete"):
            raise SystemExit(f"no finished run in {STATE}")
        text = report(data)
        print(text)
        if not args.no_write:
            write_section(NAME, text)
        return
    state = State(STATE, {"n": args.n}, fresh=args.fresh)
    isolated_home()
    inp = ensure_input(args.n)
    bundle = ensure_bundle()
    state.data["command"] = "python benchmarks/corpus_scaling.py" + ("" if args.n == 2000 else f" --n {args.n}")
    if not state.resumed:
        shutil.rmtree(ART / "out", ignore_errors=True)
    (ART / "out").mkdir(parents=True, exist_ok=True)
    for key, argv in commands(inp, bundle):
        if state.has(key):
            continue
        if key == "ray2":
            shutil.rmtree(ART / "out" / "ray2", ignore_errors=True)  # a half-done earlier attempt: start over
        load = fmt_load(load_average())
        print(f"[{now()}] {key}, load {load} ...", flush=True)
        run = run_child(argv, timeout=args.timeout, env={"OMP_NUM_THREADS": "1"} if key != "extract" else None)
        if run["rc"] not in (0,):
            raise SystemExit(f"{key}: " + child_failed(run))
        row = {"wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"], "load": load}
        if key != "extract":
            row["summary"] = json.loads(run["stdout"][run["stdout"].index("{"):run["stdout"].rindex("}") + 1])
        print(f"    {run['wall_s']:.1f} s", flush=True)
        state.put(key, row)
    state.finish(records=records_equal())
    text = report(state.data)
    print(text)
    if not args.no_write:
        write_section(NAME, text)


if __name__ == "__main__":
    main()
