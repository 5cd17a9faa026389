"""Performance-selection budget: 10 candidate experts x 32 sampled sentences on this CPU.

    python benchmarks/selection_speed.py [--candidates 10] [--sample 32] [--threads 2] [--skip-hf]

samedge scores candidates as runtime LoRAs over one loaded Q8_0 base (llama.cpp); the baseline
is the same scoring in transformers + PEFT (fp32, batched greedy generate, adapters swapped on
one loaded base), on the first ``--baseline-candidates`` experts only, since it is slow; rates
are compared per candidate-sentence within one run. A second samedge row runs the engine as it was
before issue 15 (n_seq 8, 1,024 KV cells per sequence), for the ratio within the run. Each engine runs in its own child process
(its peak RSS is reported). Target: the shipped ``legal`` profile's texts, sampled as a build
would (seed 0). Goal (issue 4): 10 x 32 in <= 90 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import emit, fmt_load, load_average, machine, now, run_child, table, write_section  # noqa: E402

NAME = "selection_speed"


def _setup(args, hf: bool = False):
    from samedge.base import provision
    from samedge.library import Library
    from samedge.select.performance import sample_instances
    from samedge.targets import load_target

    target = load_target("legal")
    docs, _ = sample_instances(target, args.sample, 0)
    experts = Library.open(None).experts()[:args.candidates]
    return provision(hf=hf), target, docs, experts


def child_samedge(args) -> None:
    import os

    from samedge.extract.engines import llama
    from samedge.select import runner

    if args.child == "samedge-before":   # the engine as it was before issue 15: n_seq 8, 1,024 KV cells each
        llama.DEFAULT_N_SEQ, llama.DEFAULT_KV_CELLS = 8, None

    base, target, docs, experts = _setup(args)
    started = time.perf_counter()
    # Cold: the experts' GGUF LoRAs are converted first (a build does it once per expert, cached).
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAMEDGE_HOME"] = tmp  # an empty LoRA cache; the base stays where it is
        convert_started = time.perf_counter()
        for e in experts:
            runner.lora_gguf(e, base.gguf)
        convert_s = time.perf_counter() - convert_started
        scoring_started = time.perf_counter()
        runner.run_experts({e.name: {"expert": e} for e in experts}, target.labels, docs, base,
                                threads=args.threads, progress=False)
        scoring_s = time.perf_counter() - scoring_started
    emit({"engine": args.child, "candidates": len(experts), "sentences": len(docs), "convert_s": round(convert_s, 2),
          "scoring_s": round(scoring_s, 2), "total_s": round(time.perf_counter() - started, 2)})


def child_hf(args) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from samedge.extract import Extractor
    from samedge.extract.engines.hf import HFEngine

    torch.set_num_threads(args.threads)
    base, target, docs, experts = _setup(args, hf=True)  # the HF folder beside the GGUF
    experts = experts[:args.baseline_candidates]
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(base.hf)
    model = AutoModelForCausalLM.from_pretrained(base.hf, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(experts[0].path), adapter_name=experts[0].name)
    for e in experts[1:]:
        model.load_adapter(str(e.path), adapter_name=e.name)
    model.eval()
    load_s = time.perf_counter() - started
    scoring_started = time.perf_counter()
    for e in experts:
        model.set_adapter(e.name)
        Extractor(HFEngine(model, tokenizer, batch_size=8), target.labels).extract_many(
            [d["text"] for d in docs], ids=[d["id"] for d in docs])
    scoring_s = time.perf_counter() - scoring_started
    emit({"engine": "transformers+peft", "candidates": len(experts), "sentences": len(docs),
          "load_s": round(load_s, 2), "scoring_s": round(scoring_s, 2),
          "total_s": round(time.perf_counter() - started, 2)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--baseline-candidates", type=int, default=2)
    ap.add_argument("--sample", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", choices=["samedge", "samedge-before", "hf"])
    ap.add_argument("--skip-hf", action="store_true", help="no transformers + PEFT row")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.child in ("samedge", "samedge-before"):
        return child_samedge(args) or 0
    if args.child == "hf":
        return child_hf(args) or 0

    common = ["--candidates", str(args.candidates), "--baseline-candidates", str(args.baseline_candidates),
              "--sample", str(args.sample), "--threads", str(args.threads)]
    load_start, rows = load_average(), {}
    for engine in ("samedge-before", "samedge") + (() if args.skip_hf else ("hf",)):
        run = run_child([sys.executable, __file__, "--child", engine] + common)
        if run["result"] is None:
            print(run["stderr"][-3000:], file=sys.stderr)
            return 1
        rows[engine] = dict(run["result"], peak_rss_mb=run["peak_rss_mb"], wall_s=run["wall_s"])
        print(json.dumps(rows[engine]), flush=True)
    load_end = load_average()

    sam, old, hf = rows["samedge"], rows["samedge-before"], rows.get("hf")
    per = {k: r["scoring_s"] / (r["candidates"] * r["sentences"]) for k, r in rows.items()}
    budget = sam["total_s"]
    table_rows = [["**samedge**: runtime LoRA over one Q8_0 base (llama.cpp)", sam["candidates"], sam["sentences"],
                   f"{sam['convert_s']:.1f} (LoRA -> GGUF)", f"{sam['scoring_s']:.1f}", f"{1000 * per['samedge']:.0f}",
                   sam["peak_rss_mb"]],
                  ["the same, engine before issue 15 (n_seq 8, 1,024 KV cells each)", old["candidates"],
                   old["sentences"], f"{old['convert_s']:.1f} (LoRA -> GGUF)", f"{old['scoring_s']:.1f}",
                   f"{1000 * per['samedge-before']:.0f}", old["peak_rss_mb"]]]
    if hf:
        table_rows.append(["transformers + PEFT fp32, batch 8, adapters swapped", hf["candidates"], hf["sentences"],
                           f"{hf['load_s']:.1f} (load)", f"{hf['scoring_s']:.1f}", f"{1000 * per['hf']:.0f}",
                           hf["peak_rss_mb"]])
    lines = [
        "## Performance selection: candidates x sampled sentences", "",
        f"{sam['candidates']} candidate experts x {sam['sentences']} sentences sampled from the `legal` profile "
        f"(seed 0), {args.threads} threads, greedy answers with the target's labels.", "",
        table(["engine", "candidates", "sentences", "prep s", "scoring s", "ms per candidate-sentence", "peak RSS MB"],
              table_rows),
        "",
        f"- samedge, {sam['candidates']} x {sam['sentences']} including the LoRA conversion: **{budget:.0f} s** "
        f"(goal <= 90 s: {'met' if budget <= 90 else 'not met'}); scoring alone {sam['scoring_s']:.0f} s "
        f"({old['scoring_s'] / sam['scoring_s']:.2f}x faster than the engine before issue 15, same run). "
        "Later builds reuse the converted LoRAs (cached by sha256), and candidates already decoded on the "
        "same sample in one process are not decoded again.",
    ] + ([f"- per candidate-sentence, transformers / samedge = **{per['hf'] / per['samedge']:.1f}x**."] if hf else []) + [
        f"- Machine: {machine()['cpu']}, {machine()['cores']} cores; load average {fmt_load(load_start)} at start, "
        f"{fmt_load(load_end)} at end (other jobs were running; read the ratio).",
        f"- Measured {now()} with `python benchmarks/selection_speed.py --threads {args.threads}"
        + (" --skip-hf" if args.skip_hf else "") + "`.",
    ]
    block = "\n".join(lines)
    if not args.no_write:
        write_section(NAME, block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
