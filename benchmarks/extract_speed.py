"""Extraction at the hardware limit (issue 15): samedge's llama.cpp engine against llama.cpp's own
batch rate, a plain llama-cpp-python loop and transformers fp32, with peak RSS and F1.

    nice -n 5 python benchmarks/extract_speed.py            # the full run (resumes); writes its BENCHMARKS.md section
    python benchmarks/extract_speed.py --n 60 --docs 10 --only q8_0 --threads 1 --no-write   # a small check
    python benchmarks/extract_speed.py --report-only        # rewrite the section from the last run

Data, both with CoNLL's 4 labels:
  - ``sentences``: the first ``--n`` (500) CoNLL-2003 test sentences;
  - ``documents``: ``--docs`` (100) long multi-paragraph documents, each ``--doc-sentences`` (16)
    consecutive test sentences from sentence ``--n`` on, joined into paragraphs of 4 (sentences
    joined by a space, paragraphs by a blank line); gold offsets shifted. The shared copy of the test
    set has no -DOCSTART- lines, so consecutive runs of sentences stand in for its documents (they
    are in document order). Chunking (192-token chunks) is on this path.
Model: the shipped ``conll2003`` expert merged alone (linear, weight 1) into SmolLM2-135M-Instruct,
as samedge bundles at Q8_0 and Q4_K_M, and as an HF folder (``merge_into_hf``) for transformers.

Rows (each one child process reporting its own peak RSS, VmHWM), for each quant and thread count:
  - ``limit``: llama.cpp's tokens/s for one 512-token batch (a fresh context, median of 5 after a
    warm-up) with the bundle's own model file and the same threads: what the CPU can do;
  - ``samedge``: ``load_extractor`` with its defaults; effective tokens/s = text, suffix and answer
    tokens the engine evaluated (retries included, the cached prefix not) / wall time;
  - ``plain``: llama-cpp-python's high-level ``Llama``, one ``create_completion`` per chunk, the
    same prompt, parsing and chunking (``Llama`` reuses the common prompt prefix itself);
  - ``hf``: transformers fp32, ``HFEngine`` batch 8 (no quant; on the first ``--hf-n`` (200)
    sentences and ``--hf-docs`` (25) documents: it runs at about 1 sentence a second).
Levers (Q8_0, 2 threads, sentences): the engine as it was before issue 15 (n_seq 8, 1,024 KV cells
per sequence), and one change at a time from the defaults.

The machine is shared: the load average is recorded with every row, rows of one run interleave,
and speed is read as ratios within a run. Resumable: rows are saved in
runs/benchmarks/extract_speed.json as they finish; rerunning (same options) continues.
A full run takes about two hours on a quiet 2-core machine (the plain loop over the documents is the
longest part); ``--only``, ``--threads``, ``--skip-hf`` and ``--skip-levers`` run parts of it.
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
QUANTS = ("q8_0", "q4_k_m")
THREADS = (2, 1)
PARAGRAPH = 4                 # sentences per paragraph in the long documents
COMMAND = "nice -n 5 python benchmarks/extract_speed.py"
GOAL_LIMIT_RATIO, GOAL_PLAIN_RATIO, GOAL_RSS, GOAL_F1_GAP = 0.85, 2.5, 300.0, 0.5

# Levers: (key, label, engine overrides, extractor overrides); Q8_0, 2 threads, the sentences.
LEVERS = [
    ("before", "before issue 15: n_seq 8, 1,024 KV cells per sequence (9,216)",
     {"n_seq": 8, "kv_cells": 9216}, {}),
    ("seq8", "n_seq 8", {"n_seq": 8}, {}),
    ("seq32", "n_seq 32", {"n_seq": 32}, {}),
    ("cells1024", "1,024 KV cells", {"kv_cells": 1024}, {}),
    ("cells4096", "4,096 KV cells", {"kv_cells": 4096}, {}),
    ("kvq8", "Q8_0 KV cache", {"kv_type": "q8_0"}, {}),
    ("kvq8_4096", "Q8_0 KV cache, 4,096 cells", {"kv_type": "q8_0", "kv_cells": 4096}, {}),
    ("longest", "longest prompts first", {"schedule": "longest"}, {}),
    ("nofa", "flash attention off", {"flash_attn": 0}, {}),
    ("ubatch256", "n_ubatch 256", {"n_ubatch": 256}, {}),
    ("answer64", "answers up to 64 tokens (not 160)", {}, {"answer_tokens": 64}),
]


# --- rows ---------------------------------------------------------------------------------

def plan(args) -> list[tuple[str, dict]]:
    """(key, child spec) for every row."""
    rows = []
    for threads in THREADS:
        if args.threads and threads != args.threads:
            continue
        for i, quant in enumerate(q for q in QUANTS if not args.only or q == args.only):
            base = {"quant": quant, "threads": threads}
            rows.append((f"limit_{quant}_t{threads}", dict(base, kind="limit")))
            for data in ("sent", "docs"):
                rows.append((f"samedge_{quant}_t{threads}_{data}", dict(base, kind="samedge", data=data)))
                rows.append((f"plain_{quant}_t{threads}_{data}", dict(base, kind="plain", data=data)))
            if i == 0 and not args.skip_hf:  # right after the first quant: an interrupted run has its comparison
                for data in ("sent", "docs"):
                    rows.append((f"hf_t{threads}_{data}", {"kind": "hf", "threads": threads, "data": data, "batch": 8}))
    if not args.skip_levers and (not args.only or args.only == "q8_0") and (not args.threads or args.threads == 2):
        for key, _, engine, extractor in LEVERS:
            rows.append((f"lever_{key}", {"kind": "samedge", "quant": "q8_0", "threads": 2, "data": "sent",
                                          "engine": engine, "extractor": extractor}))
    return rows


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


# --- data ------------------------------------------------------------------------------------

def _test_set() -> list[dict]:
    import warnings
    from samedge.data.catalog import load_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_split(DOMAIN, "test")


def long_documents(sentences: list[dict], n_docs: int, per_doc: int = 16, start: int = 0) -> list[dict]:
    """``n_docs`` documents of ``per_doc`` consecutive sentences from ``start`` on, in paragraphs
    of ``PARAGRAPH`` sentences (space within, blank line between), gold offsets shifted. Deterministic."""
    docs = []
    for d in range(n_docs):
        group = sentences[start + d * per_doc:start + (d + 1) * per_doc]
        if len(group) < per_doc:
            break
        text, entities = "", []
        for j, s in enumerate(group):
            if j:
                text += "\n\n" if j % PARAGRAPH == 0 else " "
            off = len(text)
            text += s["text"]
            entities += [dict(e, start=e["start"] + off, end=e["end"] + off) for e in s["entities"]]
        docs.append({"id": f"doc-{d}", "text": text, "entities": entities, "sentences": len(group)})
    return docs


def dataset(spec: dict, cfg: dict) -> list[dict]:
    sentences = _test_set()
    hf = spec["kind"] == "hf"
    if spec["data"] == "sent":
        return [dict(s, sentences=1) for s in sentences[:cfg["hf_n"] if hf else cfg["n"]]]
    docs = long_documents(sentences, cfg["docs"], cfg["doc_sentences"], start=cfg["n"])
    return docs[:cfg["hf_docs"]] if hf else docs


# --- children ----------------------------------------------------------------------------------

def _measure(make_extractor, docs: list[dict]) -> dict:
    """Build the extractor (timed as load), extract the documents, score them."""
    from samedge.evaluate import score_documents

    load0 = load_average()
    t = time.perf_counter()
    ex = make_extractor()
    load_s = time.perf_counter() - t
    texts, ids = [d["text"] for d in docs], [d["id"] for d in docs]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = ex.extract_many(texts, ids=ids)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    score = score_documents([{k: d[k] for k in ("id", "text", "entities")} for d in docs], results).micro
    counts = {}
    for r in results:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    n_sent = sum(d["sentences"] for d in docs)
    out = {"docs": len(docs), "sentences": n_sent, "load_s": round(load_s, 2), "wall_s": round(wall, 2),
           "cpu_s": round(cpu, 2), "sent_per_s": round(n_sent / wall, 3), "f1": round(100 * score.f1, 2),
           "counts": counts, "load_avg": [load0, load_average()]}
    stats = getattr(getattr(ex, "engine", None), "stats", None)
    if stats:
        evaluated = stats["prompt_tokens"] + stats["answer_tokens"]
        out.update(stats=dict(stats), tokens=evaluated, tok_per_s=round(evaluated / wall, 1),
                   engine={k: getattr(ex.engine, k) for k in ("n_seq", "kv_cells", "n_ctx", "n_batch")})
    return out


class HighLevelEngine:
    """llama-cpp-python's high-level ``Llama`` behind the Extractor's engine interface: the plain loop,
    one ``create_completion`` per text (``Llama`` keeps the common prompt prefix evaluated)."""

    name = "llama-cpp-python"

    def __init__(self, model_path, threads: int):
        from llama_cpp import Llama

        self.llm = Llama(str(model_path), n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
                         verbose=False, seed=0)
        self.n_ctx = 1024

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(self, prefix, texts, suffix, max_tokens):
        from samedge.extract.prompts import STOP

        out = []
        for text in texts:
            r = self.llm.create_completion(prefix + text + suffix, max_tokens=max_tokens, temperature=0.0,
                                           top_k=1, stop=[STOP])
            choice = r["choices"][0]
            out.append((choice["text"], choice["finish_reason"] == "stop"))
        return out


def limit(model_path: Path, threads: int, reps: int = 5) -> dict:
    """llama.cpp's tokens/s for one 512-token batch in a fresh context (median of ``reps`` after a warm-up)."""
    import llama_cpp

    from samedge.extract.engines.llama import _silence_llama_logs

    _silence_llama_logs()
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), llama_cpp.llama_model_default_params())
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = params.n_batch = params.n_ubatch = 512
    params.n_threads = params.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model, params)
    memory = llama_cpp.llama_get_memory(ctx)
    vocab = llama_cpp.llama_model_get_vocab(model)
    text = " ".join(s["text"] for s in _test_set()[:200]).encode()
    buf = (llama_cpp.llama_token * len(text))()
    n = llama_cpp.llama_tokenize(vocab, text, len(text), buf, len(buf), False, False)
    tokens = list(buf[:512])
    assert n >= 512
    batch = llama_cpp.llama_batch_init(512, 0, 1)
    times = []
    for _ in range(reps + 1):
        llama_cpp.llama_memory_clear(memory, True)
        batch.n_tokens = 512
        for i, t in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = t, i, 1, i == 511
            batch.seq_id[i][0] = 0
        t0 = time.perf_counter()
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        times.append(time.perf_counter() - t0)
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)
    med = statistics.median(times[1:])
    return {"tok_per_s": round(512 / med, 1), "best_tok_per_s": round(512 / min(times[1:]), 1),
            "times": [round(t, 3) for t in times], "load_avg": [load_average(), load_average()]}


def child(spec: dict, cfg: dict) -> None:
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
    if kind == "limit":
        emit(limit(bundle_dir(spec["quant"]) / "model.gguf", spec["threads"]))
        return
    labels = conll_labels()
    docs = dataset(spec, cfg)
    if kind == "samedge":
        from samedge.bundle import MODEL, load_extractor
        from samedge.extract import Extractor
        from samedge.extract.engines.llama import LlamaEngine

        engine_kw, extractor_kw = spec.get("engine") or {}, spec.get("extractor") or {}
        if engine_kw:   # a lever: the engine built by hand, one setting changed
            def make():
                return Extractor(LlamaEngine(bundle_dir(spec["quant"]) / MODEL, threads=spec["threads"], **engine_kw),
                                 labels, **extractor_kw)
        else:           # what users get
            def make():
                return load_extractor(bundle_dir(spec["quant"]), threads=spec["threads"], labels=labels,
                                      **extractor_kw)
        result = _measure(make, docs)
    elif kind == "plain":
        from samedge.extract import Extractor

        result = _measure(lambda: Extractor(HighLevelEngine(bundle_dir(spec["quant"]) / "model.gguf",
                                                            spec["threads"]), labels), docs)
    elif kind == "hf":
        import torch
        from samedge.extract import Extractor
        from samedge.extract.engines.hf import HFEngine

        torch.set_num_threads(spec["threads"])
        result = _measure(lambda: Extractor(HFEngine.load(ART / "hf_merged", device="cpu", batch_size=spec["batch"]),
                                            labels), docs)
        result["torch"] = torch.__version__
    else:
        raise SystemExit(f"unknown child kind {kind}")
    emit(result)


# --- report -------------------------------------------------------------------------------------

DATA_NAMES = {"sent": "sentences", "docs": "documents"}


def _f(x, fmt="{:.2f}"):
    return "" if x is None else fmt.format(x)


def report(data: dict) -> str:
    cfg = data["config"]
    rows = data["rows"]
    ns = argparse.Namespace(**{**cfg, "only": None, "threads": None})

    def res(key):
        return rows[key]["result"] if key in rows else None

    def rss(key):
        return rows[key]["peak_rss_mb"] if key in rows else None

    main_rows, checks = [], []
    for threads in THREADS:
        for quant in QUANTS:
            lim = res(f"limit_{quant}_t{threads}")
            for d in ("sent", "docs"):
                s, p, h = (res(f"samedge_{quant}_t{threads}_{d}"), res(f"plain_{quant}_t{threads}_{d}"),
                           res(f"hf_t{threads}_{d}"))
                if not s:
                    continue
                ratio = s["tok_per_s"] / lim["tok_per_s"] if lim else None
                xp = s["sent_per_s"] / p["sent_per_s"] if p else None
                xh = s["sent_per_s"] / h["sent_per_s"] if h else None
                hf_note = "" if not h or h["sentences"] == s["sentences"] else f" ({h['sentences']})"
                main_rows.append([
                    quant.upper(), threads, f"{DATA_NAMES[d]} ({s['sentences']})", _f(lim and lim["tok_per_s"], "{:.0f}"),
                    _f(s["tok_per_s"], "{:.0f}"), _f(ratio), _f(s["sent_per_s"]), _f(p and p["sent_per_s"]),
                    _f(xp, "{:.2f}x"), _f(h and h["sent_per_s"]) + hf_note, _f(xh, "{:.1f}x"),
                    " / ".join(_f(rss(k), "{:.0f}") or "-" for k in (f"samedge_{quant}_t{threads}_{d}",
                                                                     f"plain_{quant}_t{threads}_{d}", f"hf_t{threads}_{d}")),
                    " / ".join(_f(r and r["f1"]) or "-" for r in (s, p, h)),
                    fmt_load(s["load_avg"][0][:1] + s["load_avg"][1][:1])])
                if threads == 2:
                    r_ok = ratio is not None and ratio >= GOAL_LIMIT_RATIO
                    p_ok = xp is not None and xp >= GOAL_PLAIN_RATIO
                    m_ok = rss(f"samedge_{quant}_t{threads}_{d}") <= GOAL_RSS
                    checks.append(f"{quant.upper()}, 2 threads, {DATA_NAMES[d]}: ratio to the limit {_f(ratio) or 'n/a'} "
                                  f"(goal >= {GOAL_LIMIT_RATIO}: {'met' if r_ok else 'not met'}); "
                                  f"{_f(xp, '{:.2f}x') or 'n/a'} the plain loop (goal >= {GOAL_PLAIN_RATIO}x: "
                                  f"{'met' if p_ok else 'not met' if xp is not None else 'not measured'}); peak RSS "
                                  f"{rss(f'samedge_{quant}_t{threads}_{d}'):.0f} MB (goal <= {GOAL_RSS:.0f}: "
                                  f"{'met' if m_ok else 'not met'}).")
    headers = ["quant", "threads", "data (sentences)", "limit tok/s", "samedge tok/s", "ratio", "samedge sent/s",
               "plain loop sent/s", "x plain", "transformers sent/s", "x transformers",
               "peak RSS MB (samedge / plain / transformers)", "F1 (samedge / plain / transformers)", "load (start / end)"]
    exp = data.get("expert", {})
    out = ["## Extraction speed: samedge against the hardware limit (CoNLL-2003 test)\n",
           f"Model: the shipped `{EXPERT}` expert ({exp.get('steps')} training steps) merged alone (linear, weight 1) "
           "into SmolLM2-135M-Instruct, as samedge bundles (Q8_0, Q4_K_M) and as an HF folder for transformers fp32. "
           f"CoNLL's 4 labels, greedy answers. *sentences*: the first {cfg['n']} test sentences. *documents*: "
           f"{cfg['docs']} documents of {cfg['doc_sentences']} consecutive test sentences (from sentence {cfg['n']} on) "
           f"in paragraphs of {PARAGRAPH}, chunked to 192 tokens (the shared test file has no -DOCSTART- lines, so runs "
           "of consecutive sentences stand in for its documents).\n",
           "- **limit**: llama.cpp's tokens/s for one 512-token batch, the bundle's own model file, same threads "
           "(median of 5 after a warm-up).",
           "- **samedge tok/s**: text, suffix and answer tokens the engine evaluated (split retries and evicted "
           "sequences included, the cached instruction prefix not) / wall time; **ratio** = samedge tok/s / limit.",
           "- **plain loop**: llama-cpp-python's `Llama.create_completion`, one call per chunk, the same prompt, "
           "chunking and parsing (it reuses the common prompt prefix itself). **transformers**: fp32, batch 8"
           + (f", on the first {cfg['hf_n']} sentences / {cfg['hf_docs']} documents (count in parentheses)"
              if cfg["hf_n"] < cfg["n"] or cfg["hf_docs"] < cfg["docs"] else "") + ".",
           "- sent/s for documents: source sentences per second. Peak RSS: each row's own process (VmHWM: "
           "imports, model, KV cache).\n",
           table(headers, main_rows), ""]
    out += ["- " + c for c in checks]
    lever_rows = []
    base = res("samedge_q8_0_t2_sent")
    lim = res("limit_q8_0_t2")
    if base:
        lever_rows.append(["**defaults**", _f(base["sent_per_s"]), _f(base["tok_per_s"], "{:.0f}"),
                           _f(lim and base["tok_per_s"] / lim["tok_per_s"]), "1.00x", _f(base["cpu_s"], "{:.1f}"),
                           _f(rss("samedge_q8_0_t2_sent"), "{:.0f}"), _f(base["f1"]), base["stats"]["decodes"],
                           base["stats"].get("evictions", 0), fmt_load(base["load_avg"][0][:1])])
    for key, label, _, _ in LEVERS:
        r = res(f"lever_{key}")
        if not r:
            continue
        lever_rows.append([label, _f(r["sent_per_s"]), _f(r["tok_per_s"], "{:.0f}"),
                           _f(lim and r["tok_per_s"] / lim["tok_per_s"]),
                           _f(base and r["sent_per_s"] / base["sent_per_s"], "{:.2f}x"), _f(r["cpu_s"], "{:.1f}"),
                           _f(rss(f"lever_{key}"), "{:.0f}"), _f(r["f1"]), r["stats"]["decodes"],
                           r["stats"].get("evictions", 0),
                           fmt_load(r["load_avg"][0][:1])])
    if lever_rows:
        eng = base["engine"] if base else {}
        out += ["", f"Levers (Q8_0, 2 threads, the {cfg['n']} sentences): the defaults (n_seq {eng.get('n_seq')}, "
                    f"{eng.get('kv_cells')} KV cells in all, f16 cache, flash attention auto, first in first out, "
                    "n_batch = n_ubatch = 512, answers up to 160 tokens), then one setting changed per row.\n",
                table(["engine", "sent/s", "tok/s", "ratio to limit", "vs defaults", "cpu s", "peak RSS MB", "F1",
                       "decodes", "evictions", "load"], lever_rows)]
    q8, q4 = res("samedge_q8_0_t2_sent"), res("samedge_q4_k_m_t2_sent")
    if q8 and q4:
        gap = q4["f1"] - q8["f1"]
        faster = q4["sent_per_s"] / q8["sent_per_s"]
        ok = faster > 1 and abs(gap) <= GOAL_F1_GAP and q8["sentences"] >= 500
        out += ["", f"- Default quantization: Q4_K_M / Q8_0 = {faster:.2f}x sentences/s, F1 {q4['f1']:.2f} vs "
                    f"{q8['f1']:.2f} ({gap:+.2f}) on {q8['sentences']} sentences, 2 threads: "
                    + ("Q4_K_M qualifies (faster, within 0.5 F1)." if ok else
                       "Q4_K_M does not qualify (" + ("not faster" if faster <= 1 else
                                                     f"F1 gap {gap:+.2f} is beyond {GOAL_F1_GAP}"
                                                     if abs(gap) > GOAL_F1_GAP else "fewer than 500 sentences")
                       + ").")]
    m = data["machine"]
    out += ["", NOTES.strip(), "",
            f"- Machine: {m['cpu']}, {m['cores']} cores; load average at start {fmt_load(m['load_at_start'])} "
            "(1/5/15 min).",
            f"- Measured {data['started']} - {data.get('finished', '?')} with `{data['command']}`; "
            f"Python {m['python']}, llama-cpp-python {data.get('llama_cpp', '?')}, "
            f"torch {next((r['result'].get('torch') for r in rows.values() if r['result'].get('torch')), '?')}."]
    return "\n".join(out)


NOTES = """\
What the engine does (samedge.extract.engines.llama, issue 15): one unified KV cache of `kv_cells` cells in all
(not 1,024 per sequence), holding the instruction prefix once and every sequence in flight; a text is
admitted while its prompt and a guess of its answer (32 tokens) fit, and if the running answers outgrow
the cache the newest sequence is evicted and decoded again later (the `evictions` column). More
sequences in flight make each `llama_decode` larger (new prompts and every running sequence's next
token together), which is what brings llama.cpp near its batch rate; the greedy token of every
sequence is one argmax over the decode's logits rows. Answers depend on which tokens share a decode
(llama.cpp's kernels differ with the batch size), so F1 moves slightly between engine settings.
Measured while building it (2 busy cores, load 4-6, 200 sentences, Q8_0): process CPU time is almost
all in `llama_decode` and about the same per token for every setting (n_seq 8 to 64, 2,048 to 9,216
cells): bigger decodes read the weights fewer times, but attention runs over the cache's whole used
range (a 32-token decode: 4.3 ms a token beside an empty cache, 6.2 beside 3,584 cells, 1 thread).
What more sequences in flight save is decodes (403 -> 142 for 200 sentences), hence the per-decode
thread start-up and synchronisation and the single-threaded Python between decodes: a wall-time gain
that grows with the thread count. A cache of 2,048 cells (not 9,216) is what brings peak RSS under 300 MB.
"""


# --- main -------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="CoNLL test sentences")
    ap.add_argument("--docs", type=int, default=100, help="long documents")
    ap.add_argument("--doc-sentences", type=int, default=16, help="sentences per long document")
    ap.add_argument("--hf-n", type=int, default=200, help="sentences for the transformers rows (slow: ~1 a second)")
    ap.add_argument("--hf-docs", type=int, default=25, help="documents for the transformers rows")
    ap.add_argument("--only", choices=QUANTS, help="one quantization only")
    ap.add_argument("--threads", type=int, choices=THREADS, help="one thread count only")
    ap.add_argument("--skip-hf", action="store_true", help="no transformers rows (no torch needed)")
    ap.add_argument("--skip-levers", action="store_true", help="no lever rows")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per row")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child), json.loads(args.config or "{}"))
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # children: idle OpenMP threads sleep (torch too)

    if args.report_only:
        data = State.last(STATE)
        if not data:
            raise SystemExit(f"no saved run in {STATE}")
        text = report(data)
        print(text)
        if not args.no_write:
            write_section(NAME, text)
        return

    config = {"n": args.n, "docs": args.docs, "doc_sentences": args.doc_sentences,
              "hf_n": min(args.hf_n, args.n), "hf_docs": min(args.hf_docs, args.docs),
              "only": args.only, "threads": args.threads, "skip_hf": args.skip_hf, "skip_levers": args.skip_levers}
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

    for key, spec in plan(args):
        if state.has(key):
            continue
        print(f"[{now()}] {key} load {fmt_load(load_average())} ...", flush=True)
        run = run_child([sys.executable, __file__, "--child", json.dumps(spec), "--config", json.dumps(config)],
                        timeout=args.timeout)
        if run["rc"] != 0 or not run["result"]:
            raise SystemExit(f"{key}: " + child_failed(run))
        res = run["result"]
        if spec["kind"] == "limit":
            print(f"    {res['tok_per_s']:.0f} tokens/s at batch 512", flush=True)
        else:
            print(f"    {res['sent_per_s']:.2f} sentences/s" + (f", {res['tok_per_s']:.0f} tokens/s" if "tok_per_s" in res
                                                                 else "")
                  + f", cpu {res['cpu_s']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB, F1 {res['f1']:.2f}", flush=True)
        state.put(key, {"spec": spec, "result": res, "peak_rss_mb": run["peak_rss_mb"], "child_wall_s": run["wall_s"]})
    state.finish()
    text = report(state.data)
    print()
    print(text)
    if not args.no_write:
        write_section(NAME, text)
        print(f"\nwrote the {NAME} section of BENCHMARKS.md")


def argv_is_default(args) -> bool:
    return [a for a in sys.argv[1:] if a not in ("--fresh",)] == []


if __name__ == "__main__":
    main()
