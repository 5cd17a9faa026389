"""`samedge build --target legal` with the shipped library: wall time per stage and peak RSS.

    nice -n 5 python benchmarks/build_time.py                  # writes its BENCHMARKS.md section
    python benchmarks/build_time.py --threads 1 --rounds 3 --no-write
    python benchmarks/build_time.py --report-only

Each build is the real CLI (``python -m samedge build --target legal --k 2 --threads T --force
--json --out runs/benchmarks/build_time/legal``) in its own child process; its stage timings
come from the manifest that ``--json`` prints, its peak RSS from the child's own high-water mark
(VmHWM, read at exit), and "process wall" is the child's whole life (interpreter start and
imports included). Rows: 1 thread (primary) and 2 threads.

Goal (issue 5): <= 120 s in all and <= 1.5 GB peak RSS on 2 cores, for a 10-expert library and
the SmolLM2 base. The number of experts in the library at the time is recorded with the result.
The machine is shared (a training job runs), so the load average is recorded with every row.
Resumable: rows are saved in runs/benchmarks/build_time.json as they finish.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (WORK, isolated_home, State, child_failed, fmt_load, load_average, module_argv,  # noqa: E402
                               now, publish, run_child, table)

NAME = "build_time"
STATE = WORK / f"{NAME}.json"
OUT = WORK / NAME / "legal"
TARGET, K = "legal", 2
STAGES = ("target", "select", "merge", "quantize", "bundle")
COMMAND = "nice -n 5 python benchmarks/build_time.py"
GOAL_S, GOAL_RSS_MB = 120.0, 1536.0


def library_summary() -> dict:
    from samedge.library import Library

    lib = Library.open()
    experts = lib.experts(verify=False)
    return {"experts": len(experts), "names": [e.name for e in experts],
            "steps": {e.name: e.manifest.get("training", {}).get("steps") for e in experts}}


def build_argv(threads: int) -> list[str]:
    return module_argv("samedge", "build", "--target", TARGET, "--k", str(K), "--out", str(OUT),
                       "--threads", str(threads), "--force", "--json")


def aggregate(runs: list[dict]) -> dict:
    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    return {"timings": {s: med([r["timings"].get(s, 0.0) for r in runs]) for s in STAGES},
            "stages_s": med([sum(r["timings"].values()) for r in runs]),
            "process_s": med([r["wall_s"] for r in runs]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "load": [runs[0]["load"][0], runs[-1]["load"][1]], "rounds": len(runs),
            "selected": runs[0]["selected"], "method": runs[0]["method"], "quant": runs[0]["quant"]}


def report(data: dict) -> str:
    cfg = data["config"]
    rows, agg = [], {}
    for t in cfg["threads"]:
        runs = [data["rows"][f"t{t}#{r}"] for r in range(cfg["rounds"]) if f"t{t}#{r}" in data["rows"]]
        if not runs:
            continue
        a = agg[t] = aggregate(runs)
        rows.append([t] + [f"{a['timings'][s]:.1f}" for s in STAGES] +
                    [f"{a['stages_s']:.1f}", f"{a['process_s']:.1f}", f"{a['peak_rss_mb']:.0f}", f"{a['load'][0][0]:.1f} / {a['load'][1][0]:.1f}"])
    lib = data["library"]
    first = next(iter(agg.values()))
    out = ["## Build time (`samedge build --target legal`)\n",
           f"`samedge build --target {TARGET} --k {K} --threads T --force --json` with the shipped library: "
           f"**{lib['experts']} experts** at the time ({', '.join(lib['names'])}; "
           f"{', '.join(sorted({str(s) for s in lib['steps'].values()}))} training steps each), SmolLM2-135M base "
           f"(cached GGUF f16), method {first['method']}, quant {first['quant']}; selected: "
           f"{', '.join(first['selected'])}. Stage times (s) from the manifest's `timings`; `process` is the "
           "child's whole wall time (interpreter start and imports included); peak RSS is the child's "
           "high-water mark. Median of "
           f"{cfg['rounds']} run(s) per row.\n",
           table(["threads"] + list(STAGES) + ["stages", "process", "peak RSS MB", "load avg (start, end)"], rows), ""]
    for t, a in agg.items():
        out.append(f"- {t} thread(s): {a['process_s']:.0f} s in all (goal <= {GOAL_S:.0f} s: "
                   f"{'met' if a['process_s'] <= GOAL_S else 'not met'}), peak RSS {a['peak_rss_mb']:.0f} MB "
                   f"(goal <= 1.5 GB: {'met' if a['peak_rss_mb'] <= GOAL_RSS_MB else 'not met'}).")
    out.append(f"- The goal is stated for a 10-expert library; this one had {lib['experts']}. Selection by "
               "similarity reads each expert's stored centroid (one dot product each) and embeds the target's "
               "texts once, and the merge reads only the k selected experts, so more experts in the library "
               "add little; k and the quant type set the cost.")
    m = data["machine"]
    out += [f"- Machine: {m['cpu']}, {m['cores']} cores; load average at start {fmt_load(m['load_at_start'])} "
            "(1/5/15 min; other jobs were running).",
            f"- Measured {data['started']} - {data.get('finished', '?')} with `{data['command']}`; "
            f"Python {m['python']}."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, one row each")
    ap.add_argument("--rounds", type=int, default=1, help="builds per row; the median counts")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()

    if args.report_only:
        data = State.last(STATE)
        if not data:
            raise SystemExit(f"no saved run in {STATE}")
        publish(NAME, report(data), write=not args.no_write)
        return

    threads = [int(t) for t in args.threads.split(",")]
    state = State(STATE, {"threads": threads, "rounds": args.rounds}, fresh=args.fresh)
    if state.resumed:
        print(f"resuming the run started {state.data['started']} ({len(state.rows)} rows done)")
    isolated_home()   # builds leave the user's "last bundle" alone
    lib = library_summary()
    if state.resumed and state.data.get("library", lib) != lib:
        raise SystemExit("the library changed since this run started: rerun with --fresh")
    state.data["library"] = lib
    state.data["command"] = COMMAND + "".join(" " + a for a in sys.argv[1:] if a != "--fresh")
    state.save()
    print(f"library: {lib['experts']} experts ({', '.join(lib['names'])})")
    for r in range(args.rounds):
        for t in threads:
            key = f"t{t}#{r}"
            if state.has(key):
                continue
            print(f"[{now()}] build, {t} thread(s), round {r + 1}/{args.rounds}, load {fmt_load(load_average())} ...",
                  flush=True)
            load0 = load_average()
            run = run_child(build_argv(t), timeout=args.timeout)
            if run["rc"] != 0:
                raise SystemExit(child_failed(run))
            manifest = json.loads(run["stdout"])
            row = {"timings": manifest["timings"], "wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"],
                   "load": [load0, load_average()], "quant": manifest["quant"],
                   "method": manifest["merge"]["method"],
                   "selected": [e["name"] for e in manifest["merge"]["experts"]]}
            print(f"    {row['timings']}  process {run['wall_s']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)
            state.put(key, row)
    state.finish()
    publish(NAME, report(state.data), write=not args.no_write)


if __name__ == "__main__":
    main()
