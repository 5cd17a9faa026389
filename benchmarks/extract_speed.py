"""Extraction speed, memory and F1: samedge's llama.cpp engine vs the same merged model in transformers.

    nice -n 5 python benchmarks/extract_speed.py               # default run; writes its BENCHMARKS.md section
    python benchmarks/extract_speed.py --n 500 --sub-n 100 --rounds 3 --no-write
    python benchmarks/extract_speed.py --report-only           # rewrite the section from the last run

Sentences: the first ``--n`` (200) CoNLL-2003 test sentences from ../shared, with CoNLL's 4 labels.
Model: the shipped library's ``conll2003`` expert merged alone (linear, weight 1) into SmolLM2-135M:
  - as conll2003-only samedge bundles (``samedge.build``) at Q8_0, f16 and Q4_K_M;
  - as an HF folder (``merge_into_hf``, the same expert and weight) for the transformers fp32 baseline.
Every row runs in its own child process, which reports its peak RSS (``os.wait4``: imports,
model, KV cache, everything). Rows:

  llama.cpp Q8_0, n_seq=8 (continuous batching + cached prompt prefix), 1 thread   <- samedge
  llama.cpp Q8_0, n_seq=1 (no batching; prefix still cached), 1 thread
  transformers fp32 (HFEngine: batched greedy ``generate``), batch 8 and batch 1, 1 thread
  2 threads: llama.cpp n_seq=8 vs transformers batch 8 (on the first ``--sub-n`` sentences)
  f16 and Q4_K_M bundles (F1: Q8_0 should be within 0.5 points of f16)
  Q8_0 KV cache (experiment: the engine's cache is f16; this shows the memory lever)
  grammar: llama-cpp-python's high-level ``Llama`` with and without a GBNF ``LlamaGrammar`` for
  the answer format, one sentence per call (first ``--sub-n`` sentences)

The machine is shared (2 cores, a training job in the background), so absolute rates move with
the load; the load average is recorded with every row and engines are compared as ratios
within one run (rows interleave llama.cpp and transformers). ``cpu s`` is the process CPU time
of the extraction (all threads), a figure less sensitive to other jobs than wall time.

Resumable: rows are saved in runs/benchmarks/extract_speed.json as they finish; rerunning an
interrupted run (same options) continues it. Bundles and the HF folder are cached under
runs/benchmarks/extract_speed/ and rebuilt only when the expert changes.
Needs the train extra (torch, transformers) for the baseline rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (WORK, isolated_home, child_failed, emit, fmt_load, load_average, now,  # noqa: E402
                               run_child, State, table, write_section)

NAME = "extract_speed"
EXPERT = "conll2003"
DOMAIN = "conll2003"
ART = WORK / NAME
STATE = WORK / f"{NAME}.json"
QUANTS = ("q8_0", "f16", "q4_k_m")
ANSWER_TOKENS = 160           # the Extractor's default
COMMAND = "nice -n 5 python benchmarks/extract_speed.py"
GOAL_RATE, GOAL_RATIO, GOAL_RSS, GOAL_F1_GAP = 15.0, 8.0, 400.0, 0.5


# --- rows ---------------------------------------------------------------------------------

def plan(args) -> list[tuple[str, dict]]:
    """(key, child spec) for every row, interleaving llama.cpp and transformers."""
    n, sub = args.n, min(args.sub_n, args.n)
    rows = [
        ("llama_q8_0_seq8_t1", {"kind": "llama", "quant": "q8_0", "n_seq": 8, "threads": 1, "n": n}),
        ("hf_b8_t1", {"kind": "hf", "batch": 8, "threads": 1, "n": n}),
        ("llama_q8_0_seq1_t1", {"kind": "llama", "quant": "q8_0", "n_seq": 1, "threads": 1, "n": n}),
        ("hf_b1_t1", {"kind": "hf", "batch": 1, "threads": 1, "n": sub}),
        ("llama_q8_0_seq8_t2", {"kind": "llama", "quant": "q8_0", "n_seq": 8, "threads": 2, "n": sub}),
        ("hf_b8_t2", {"kind": "hf", "batch": 8, "threads": 2, "n": sub}),
        ("llama_f16_seq8_t1", {"kind": "llama", "quant": "f16", "n_seq": 8, "threads": 1, "n": n}),
        ("llama_q4_k_m_seq8_t1", {"kind": "llama", "quant": "q4_k_m", "n_seq": 8, "threads": 1, "n": n}),
        ("llama_q8_0_seq8_t1_kvq8", {"kind": "llama", "quant": "q8_0", "n_seq": 8, "threads": 1, "n": n,
                                     "kv": "q8_0"}),
        ("grammar_off", {"kind": "grammar", "grammar": False, "threads": 1, "n": sub}),
        ("grammar_on", {"kind": "grammar", "grammar": True, "threads": 1, "n": sub}),
    ]
    if args.skip_hf:
        rows = [r for r in rows if r[1]["kind"] != "hf"]
    return rows


LABELS_OF_ROW = {
    "llama_q8_0_seq8_t1": "**samedge** llama.cpp Q8_0, n_seq=8 + prefix cache",
    "llama_q8_0_seq1_t1": "llama.cpp Q8_0, n_seq=1 (no batching) + prefix cache",
    "hf_b8_t1": "transformers fp32, batch 8",
    "hf_b1_t1": "transformers fp32, batch 1",
    "llama_q8_0_seq8_t2": "llama.cpp Q8_0, n_seq=8",
    "hf_b8_t2": "transformers fp32, batch 8",
    "llama_f16_seq8_t1": "llama.cpp f16, n_seq=8",
    "llama_q4_k_m_seq8_t1": "llama.cpp Q4_K_M, n_seq=8",
    "llama_q8_0_seq8_t1_kvq8": "llama.cpp Q8_0, n_seq=8, Q8_0 KV cache (experiment)",
    "grammar_off": "high-level `Llama`, unconstrained",
    "grammar_on": "high-level `Llama` + GBNF `LlamaGrammar`",
}


# --- artifacts (parent) ----------------------------------------------------------------------

def conll_labels():
    from samedge.data.catalog import get_domain
    return get_domain(DOMAIN).labels


def expert_info() -> tuple:
    from samedge.library import Library
    expert = Library.open().get(EXPERT)
    t = expert.manifest.get("training", {})
    return expert, {"name": expert.name, "files": expert.manifest["files"], "steps": t.get("steps"),
                    "dev_f1": expert.dev_f1, "path": str(expert.path)}


def bundle_dir(quant: str) -> Path:
    return ART / f"bundle_{quant}"


def ensure_bundle(quant: str, expert_files: dict) -> Path:
    """A conll2003-only bundle (linear merge, weight 1), reused while the expert is unchanged."""
    from samedge.build import BuildOptions, build

    out = bundle_dir(quant)
    try:
        data = json.loads((out / "bundle.json").read_text())
        if data["quant"] == quant and [e["sha256"] for e in data["merge"]["experts"]] == [expert_files]:
            return out
    except (OSError, ValueError, KeyError):
        pass
    print(f"building the {quant} bundle ...", flush=True)
    t = time.time()
    build(BuildOptions(target="news", labels=conll_labels(), only=(EXPERT,), k=1, method="linear", quant=quant,
                       threads=1, force=True), out, log=lambda m: None)
    print(f"  {time.time() - t:.0f} s", flush=True)
    return out


def ensure_hf(expert_files: dict) -> Path:
    """The same merge as an HF folder (merge_into_hf), in a child process (torch)."""
    out = ART / "hf_merged"
    stamp = out / "samedge_source.json"
    try:
        if json.loads(stamp.read_text()) == expert_files:
            return out
    except (OSError, ValueError):
        pass
    print("merging into the HF base (merge_into_hf) ...", flush=True)
    run = run_child([sys.executable, __file__, "--child", json.dumps({"kind": "merge_hf", "out": str(out)})])
    if run["rc"] != 0:
        raise SystemExit(child_failed(run))
    stamp.write_text(json.dumps(expert_files))
    return out


# --- children ----------------------------------------------------------------------------------

def _docs(n: int):
    import warnings
    from samedge.data.catalog import load_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_split(DOMAIN, "test")[:n]


def _measure(make_extractor, n: int) -> dict:
    """Build the extractor (timed as load), extract the first n sentences, score them."""
    from samedge.evaluate import score_documents

    docs = _docs(n)
    load0 = load_average()
    t = time.perf_counter()
    ex = make_extractor()
    load_s = time.perf_counter() - t
    texts, ids = [d["text"] for d in docs], [d["id"] for d in docs]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = ex.extract_many(texts, ids=ids)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    score = score_documents(docs, results).micro
    counts = {}
    for r in results:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    return {"n": n, "load_s": round(load_s, 2), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "sent_per_s": round(n / wall, 3), "f1": round(100 * score.f1, 2), "counts": counts,
            "load_avg": [load0, load_average()]}


def _kv_q8_0() -> None:
    """Experiment only: give the engine's llama.cpp context a Q8_0 KV cache (needs flash attention)."""
    import llama_cpp

    inner = llama_cpp.llama_init_from_model

    def init(model, params):
        params.type_k = params.type_v = llama_cpp.GGML_TYPE_Q8_0
        params.flash_attn_type = 1
        return inner(model, params)

    llama_cpp.llama_init_from_model = init


class HighLevelEngine:
    """llama-cpp-python's high-level ``Llama`` behind the Extractor's engine interface, one call per
    text (its own prompt-prefix reuse keeps the instruction evaluated), optionally with a grammar."""

    name = "llama-cpp-python"

    def __init__(self, model_path, threads: int, grammar: str | None):
        from llama_cpp import Llama, LlamaGrammar

        self.llm = Llama(str(model_path), n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
                         verbose=False, seed=0)
        self.n_ctx = 1024
        self.grammar = LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
        self.tokens = 0

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(self, prefix, texts, suffix, max_tokens):
        from samedge.prompts import STOP

        out = []
        for text in texts:
            r = self.llm.create_completion(prefix + text + suffix, max_tokens=max_tokens, temperature=0.0,
                                           top_k=1, grammar=self.grammar, stop=[STOP])
            choice = r["choices"][0]
            self.tokens += r["usage"]["completion_tokens"]
            out.append((choice["text"], choice["finish_reason"] == "stop"))
        return out


def answer_grammar(labels) -> str:
    """GBNF for the answer format: ``none``, or ``label: mention`` lines with labels from the set."""
    names = " | ".join(json.dumps(lab.name) for lab in labels)
    return ('root ::= "none" | line ("\\n" line)*\n'
            'line ::= label ": " mention\n'
            f"label ::= {names}\n"
            "mention ::= [^\\n]+\n")


def child(spec: dict) -> None:
    kind = spec["kind"]
    if kind == "merge_hf":
        from samedge.base import provision
        from samedge.library import Library
        from samedge.merge.hf_merge import merge_into_hf

        base = provision(hf=True)
        expert = Library.open().get(EXPERT)
        merge_into_hf(base.hf, base.base_id, [expert], [1.0], "linear", spec["out"], force=True)
        emit({"ok": True})
        return
    labels = conll_labels()
    if kind == "llama":
        if spec.get("kv") == "q8_0":
            _kv_q8_0()
        from samedge.bundle import load_extractor

        result = _measure(lambda: load_extractor(bundle_dir(spec["quant"]), threads=spec["threads"],
                                                 n_seq=spec["n_seq"], labels=labels), spec["n"])
    elif kind == "hf":
        import torch
        from samedge.extract import Extractor
        from samedge.runtime.hf import HFEngine

        torch.set_num_threads(spec["threads"])
        result = _measure(lambda: Extractor(HFEngine.load(ART / "hf_merged", device="cpu", batch_size=spec["batch"]),
                                            labels), spec["n"])
        result["torch"] = torch.__version__
    elif kind == "grammar":
        from samedge.extract import Extractor

        engines = []

        def make():
            eng = HighLevelEngine(bundle_dir("q8_0") / "model.gguf", spec["threads"],
                                  answer_grammar(labels) if spec["grammar"] else None)
            engines.append(eng)
            return Extractor(eng, labels)

        result = _measure(make, spec["n"])
        result["completion_tokens"] = engines[0].tokens
        result["ms_per_token"] = round(1000 * result["wall_s"] / max(1, engines[0].tokens), 2)
    else:
        raise SystemExit(f"unknown child kind {kind}")
    emit(result)


# --- report -------------------------------------------------------------------------------------

def aggregate(rows: dict, key: str, rounds: int):
    runs = [rows[f"{key}#{r}"] for r in range(rounds) if f"{key}#{r}" in rows]
    if not runs:
        return None
    out = dict(runs[0])
    out["sent_per_s"] = statistics.median(r["result"]["sent_per_s"] for r in runs)
    out["cpu_s"] = statistics.median(r["result"]["cpu_s"] for r in runs)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["rounds"] = len(runs)
    return out


def report(data: dict, args) -> str:
    cfg = data["config"]
    rounds = cfg["rounds"]
    rows = {key: aggregate(data["rows"], key, rounds) for key, _ in plan(argparse.Namespace(**cfg))}
    rows = {k: v for k, v in rows.items() if v}

    def rate(k):
        return rows[k]["sent_per_s"] if k in rows else None

    def line(k, threads):
        r = rows[k]
        res = r["result"]
        f1 = f"{res['f1']:.2f}" if res["n"] == cfg["n"] else f"({res['f1']:.2f})"
        return [LABELS_OF_ROW[k], threads, res["n"], f"{r['sent_per_s']:.2f}", f"{r['cpu_s']:.1f}",
                f"{res['load_s']:.1f}", f"{r['peak_rss_mb']:.0f}", f1, res["counts"].get("unfinished_answers", 0)
                + res["counts"].get("split_retries", 0), fmt_load(res["load_avg"][0][:1] + res["load_avg"][1][:1])]

    headers = ["engine", "threads", "sentences", "sentences/s", "cpu s", "load s", "peak RSS MB", "F1",
               "cut-off answers", "load avg (start, end)"]
    main = [k for k in ("llama_q8_0_seq8_t1", "llama_q8_0_seq1_t1", "hf_b8_t1", "hf_b1_t1") if k in rows]
    two = [k for k in ("llama_q8_0_seq8_t2", "hf_b8_t2") if k in rows]
    quant = [k for k in ("llama_q8_0_seq8_t1", "llama_f16_seq8_t1", "llama_q4_k_m_seq8_t1",
                         "llama_q8_0_seq8_t1_kvq8") if k in rows]
    text_rows = [line(k, 1) for k in main] + [line(k, 2) for k in two]
    quant_rows = [line(k, 1) for k in quant]
    out = ["## Extraction speed (CoNLL-2003 test, samedge vs transformers)\n",
           f"First {cfg['n']} CoNLL-2003 test sentences (rows marked {cfg['sub_n']}: the first {cfg['sub_n']}), "
           f"CoNLL's 4 labels, answers up to {ANSWER_TOKENS} tokens, greedy. Model: the shipped `{EXPERT}` "
           f"expert ({data['expert']['steps']} training steps) merged alone (linear, weight 1) into SmolLM2-135M-"
           "Instruct: a conll2003-only samedge bundle for llama.cpp, and the same merge as an HF folder "
           "(`merge_into_hf`) for transformers fp32. Each row is one child process; peak RSS is the "
           "kernel's high-water mark for that process (imports, model, KV cache). `cpu s`: process CPU "
           "time of the extraction; `load s`: engine start-up, not in sentences/s; F1 in parentheses: on "
           "the subset only. `cut-off answers`: answers that hit the token limit plus the chunk splits "
           "they caused (the weak expert sometimes loops).\n",
           table(headers, text_rows), "",
           "Quantization (same sentences, n_seq=8, 1 thread):\n",
           table(headers, quant_rows), ""]
    bullets = []
    s8, hf8 = rate("llama_q8_0_seq8_t1"), rate("hf_b8_t1")
    if s8 and hf8:
        ratio = s8 / hf8
        bullets.append(f"samedge / transformers (batch 8), 1 thread: **{ratio:.1f}x** (goal >= {GOAL_RATIO:.0f}x: "
                       f"{'met' if ratio >= GOAL_RATIO else 'not met'}).")
    s1 = rate("llama_q8_0_seq1_t1")
    if s8 and s1:
        bullets.append(f"batching (n_seq=8 vs 1), 1 thread: {s8 / s1:.2f}x.")
    if s1 and hf8:
        bullets.append(f"llama.cpp without batching / transformers batch 8: {s1 / hf8:.1f}x.")
    t2, hf2 = rate("llama_q8_0_seq8_t2"), rate("hf_b8_t2")
    if t2 and hf2:
        bullets.append(f"2 threads: samedge / transformers (batch 8) = {t2 / hf2:.1f}x "
                       f"(first {cfg['sub_n']} sentences).")
    if s8:
        bullets.append(f"samedge rate {s8:.1f} sentences/s (goal >= {GOAL_RATE:.0f}: "
                       f"{'met' if s8 >= GOAL_RATE else 'not met'}); "
                       f"{cfg['n'] / rows['llama_q8_0_seq8_t1']['cpu_s']:.1f} sentences per CPU-second.")
        rss = rows["llama_q8_0_seq8_t1"]["peak_rss_mb"]
        bullets.append(f"samedge peak RSS {rss:.0f} MB (goal <= {GOAL_RSS:.0f}: {'met' if rss <= GOAL_RSS else 'not met'})"
                       + (f"; with a Q8_0 KV cache {rows['llama_q8_0_seq8_t1_kvq8']['peak_rss_mb']:.0f} MB"
                          if "llama_q8_0_seq8_t1_kvq8" in rows else "") + ".")
    if "llama_f16_seq8_t1" in rows and "llama_q8_0_seq8_t1" in rows:
        f16 = rows["llama_f16_seq8_t1"]["result"]["f1"]
        q8 = rows["llama_q8_0_seq8_t1"]["result"]["f1"]
        gap = q8 - f16
        q4 = rows.get("llama_q4_k_m_seq8_t1")
        bullets.append(f"F1 Q8_0 - f16 = {gap:+.2f} points (goal within {GOAL_F1_GAP}: "
                       f"{'met' if abs(gap) <= GOAL_F1_GAP else 'not met'})"
                       + (f"; Q4_K_M - f16 = {q4['result']['f1'] - f16:+.2f}" if q4 else "") + ".")
    if "grammar_on" in rows and "grammar_off" in rows:
        on, off = rows["grammar_on"], rows["grammar_off"]
        bullets.append(
            f"Grammar (high-level `Llama`, one sentence per call, first {cfg['sub_n']} sentences, 1 thread): "
            f"{off['sent_per_s']:.2f} sentences/s unconstrained vs {on['sent_per_s']:.2f} with a GBNF "
            f"`LlamaGrammar` for the answer format: grammar costs **{off['sent_per_s'] / on['sent_per_s']:.1f}x** "
            f"({off['result']['ms_per_token']:.0f} vs {on['result']['ms_per_token']:.0f} ms per generated token, wall); "
            f"F1 {off['result']['f1']:.2f} vs {on['result']['f1']:.2f}, parse failures "
            f"{off['result']['counts'].get('parse_failures', 0)} vs {on['result']['counts'].get('parse_failures', 0)}.")
    out += ["- " + b for b in bullets]
    out.append("")
    out.append(NOTES.strip())
    m = data["machine"]
    out += ["", f"- Machine: {m['cpu']}, {m['cores']} cores; load average at start "
                f"{fmt_load(m['load_at_start'])} (1/5/15 min); rounds: {rounds}.",
            f"- Measured {data['started']} - {data.get('finished', '?')} with `{data['command']}`; "
            f"Python {m['python']}, llama-cpp-python {data.get('llama_cpp', '?')}, "
            f"torch {next((r['result'].get('torch') for r in rows.values() if r['result'].get('torch')), '?')}."]
    return "\n".join(x for x in out if x is not None)


NOTES = """\
Why the goals are missed here, as measured:
- The machine is shared: a CPU training job (torch) and test runs keep the load at 4-7 on 2 cores, and
  these rows run at nice 5. Every row is slowed; ratios between rows of one run are what to read.
- On this CPU (AVX2, no AVX-512) llama.cpp's Q8_0 matrix kernel for more than one token per decode is
  far from the single-token path: measured per-decode CPU time 6.9 ms for 1 token, 27 ms for 2, 31 ms
  for 8, 154 ms for 64. Batching 8 sequences therefore gains ~1.8x per token at best, not ~8x; a
  135M model at one core is compute-bound (2.4 ms per token in large batches).
- The answers are short (about 9 tokens) but about 2-5% of them loop to the 160-token limit with the
  provisional 30-step expert, and the Extractor then halves the chunk and retries: about 10% of the
  CPU time here. A fully trained expert loops less.
- transformers fp32 at batch 8 is a strong baseline on 1 thread: padding-free greedy `generate` on
  a 135M model is also compute-bound, so the gap is the int8 kernels and less overhead, ~2-4x, not 8x.
- Peak RSS of the n_seq=8 engine is dominated by its unified KV cache: n_ctx 1024 per sequence x 9
  sequences at f16 is ~210 MB. A Q8_0 cache (experiment row) or n_ctx 512 brings it under 400 MB.
Changes made while measuring: llama.cpp's OpenMP workers now sleep when idle (`OMP_WAIT_POLICY=PASSIVE`,
set by samedge.runtime.llama before llama_cpp loads; 2 threads on the busy machine went from 0.62 to
4.4 sentences/s), and batching is continuous (a finished sequence's slot takes the next sentence at
once: 1.3x less CPU time than fixed groups of 8).
"""


# --- main -------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="CoNLL test sentences for the main rows")
    ap.add_argument("--sub-n", type=int, default=48, help="sentences for transformers batch 1, the 2-thread "
                                                           "rows and the grammar rows")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every row; the median rate counts")
    ap.add_argument("--skip-hf", action="store_true", help="no transformers rows (no torch needed)")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per row")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # children: idle OpenMP threads sleep (torch too)

    if args.report_only:
        data = State.last(STATE)
        if not data:
            raise SystemExit(f"no saved run in {STATE}")
        text = report(data, args)
        print(text)
        if not args.no_write:
            write_section(NAME, text)
        return

    config = {"n": args.n, "sub_n": args.sub_n, "rounds": args.rounds, "skip_hf": args.skip_hf}
    state = State(STATE, config, fresh=args.fresh)
    if state.resumed:
        print(f"resuming the run started {state.data['started']} ({len(state.rows)} rows done)")
    isolated_home()   # builds leave the user's "last bundle" alone
    expert, info = expert_info()
    if state.data.get("expert", {}).get("files", info["files"]) != info["files"]:
        raise SystemExit("the conll2003 expert changed since this run started: rerun with --fresh")
    state.data["expert"] = info
    import llama_cpp
    state.data["llama_cpp"] = llama_cpp.__version__
    state.data["command"] = COMMAND + ("" if argv_is_default(args) else " " + " ".join(sys.argv[1:]))
    state.save()
    for quant in QUANTS:
        ensure_bundle(quant, info["files"])
    if not args.skip_hf:
        ensure_hf(info["files"])

    rows = plan(args)
    for r in range(args.rounds):
        for key, spec in rows:
            k = f"{key}#{r}"
            if state.has(k):
                continue
            print(f"[{now()}] {key} (round {r + 1}/{args.rounds}) load {fmt_load(load_average())} ...", flush=True)
            run = run_child([sys.executable, __file__, "--child", json.dumps(spec)], timeout=args.timeout)
            if run["rc"] != 0 or not run["result"]:
                raise SystemExit(f"{key}: " + child_failed(run))
            res = run["result"]
            print(f"    {res['sent_per_s']:.2f} sentences/s, cpu {res['cpu_s']:.1f} s, peak RSS "
                  f"{run['peak_rss_mb']:.0f} MB, F1 {res['f1']:.2f}", flush=True)
            state.put(k, {"spec": spec, "result": res, "peak_rss_mb": run["peak_rss_mb"],
                          "child_wall_s": run["wall_s"]})
    state.finish()
    text = report(state.data, args)
    print()
    print(text)
    if not args.no_write:
        write_section(NAME, text)
        print(f"\nwrote the {NAME} section of BENCHMARKS.md")


def argv_is_default(args) -> bool:
    return [a for a in sys.argv[1:] if a not in ("--fresh",)] == []


if __name__ == "__main__":
    main()
