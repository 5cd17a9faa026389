"""LoRA training throughput (tokens/s) of samedge's expert training on the real SmolLM2-135M.

    nice -n 5 python benchmarks/train_throughput.py            # writes its BENCHMARKS.md section
    python benchmarks/train_throughput.py --steps 10 --threads 2 --no-write
    python benchmarks/train_throughput.py --report-only

Each row runs samedge.train's own pieces in a child process: the same base (fp32 HF folder from
``provision(hf=True)``), LoRA config and optimizer (``load_config()`` defaults), the same examples
(``catalog_source('conll2003')`` through ``make_example``/``encode_example`` with the default
recipe) and the same loss (``batch_loss``). Two steps are compared in one run: *before* (batches
drawn at random, logits at every position, fp32) and *after* (length-bucketed batches, logits
only at the answer positions, bf16 autocast on CPUs with native bf16), and that step with gradient
checkpointing, on the same documents. ``--warmup`` steps (not timed), then ``--steps``
timed steps (forward, backward, optimizer step). tokens/s counts every non-padding token of the
batch; answer tokens/s counts those the loss is on.

Rows: CPU with 1 and 2 threads (fp32), and CUDA (bf16 autocast, as the trainer's accelerate
``mixed_precision="bf16"``) when a GPU is visible; otherwise the GPU row says "no GPU". The
machine is shared (the library trainer itself runs in the background), so the load average is
recorded with every row. Resumable: rows are saved in runs/benchmarks/train_throughput.json.
Needs the train extra (torch, transformers, peft).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (WORK, State, child_failed, emit, fmt_load, load_average,  # noqa: E402
                               now, publish, run_child, table)

NAME = "train_throughput"
STATE = WORK / f"{NAME}.json"
DOMAIN = "conll2003"
COMMAND = "nice -n 5 python benchmarks/train_throughput.py"
# The step before and after length buckets + answer-only logits + bf16, and the latter with
# gradient checkpointing (the memory option).
STEPS = ("before", "after", "after+checkpointing")


def child(spec: dict) -> None:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from samedge.base import provision
    from samedge.train.recipe import Recipe
    from samedge.train.examples import batch_plan, catalog_source, encode_example, example_rng, make_example
    from samedge.train.trainer import _lora_config, _n_answer, batch_loss, cpu_has_bf16, load_config

    device = spec["device"]
    if device == "cpu":
        torch.set_num_threads(spec["threads"])
    config = load_config(overrides={"batch_size": spec["batch"]})
    torch.manual_seed(config["seed"])
    base = provision(hf=True)
    tokenizer = AutoTokenizer.from_pretrained(base.hf)
    model = AutoModelForCausalLM.from_pretrained(base.hf, dtype=torch.float32)
    model.config.use_cache = False
    if spec["step"] == "after+checkpointing":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    src = catalog_source(DOMAIN)
    docs = src.train[:spec["docs"]]
    model = get_peft_model(model, _lora_config(config)).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"],
                                  weight_decay=config["weight_decay"])
    model.train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total = spec["warmup"] + spec["steps"]
    # "before": the step as it was (random batches, logits at every position, fp32); "after": the trainer's
    # default (length-bucketed batches, logits only where the answer is, bf16 autocast where the CPU has it).
    after = spec["step"].startswith("after")
    lengths = [len(d["text"]) + sum(len(e["text"]) for e in d["entities"]) for d in docs] if after else None
    plan = batch_plan(len(docs), spec["batch"], total, config["seed"], lengths)
    recipe = Recipe.from_config(config)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda"
                else torch.autocast("cpu", dtype=torch.bfloat16, enabled=after and cpu_has_bf16()))
    times, tokens, answer_tokens, losses = [], [], [], []
    load0 = load_average()
    for step in range(total):
        batch = [encode_example(tokenizer, *make_example(docs[i], src.labels, example_rng(0, step, slot), recipe),
                                config["max_length"]) for slot, i in enumerate(plan[step])]
        batch = [b for b in batch if b is not None]
        n_answer = sum(_n_answer(b) for b in batch)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast:
            loss, n_tokens = batch_loss(model, batch, pad_id, device, n_answer, answer_logits_only=after)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        if step >= spec["warmup"]:
            times.append(dt)
            tokens.append(n_tokens)
            answer_tokens.append(n_answer)
            losses.append(round(float(loss), 4))
    emit({"s_per_step": round(statistics.median(times), 3), "mean_s_per_step": round(sum(times) / len(times), 3),
          "tokens_per_s": round(sum(tokens) / sum(times), 1),
          "answer_tokens_per_s": round(sum(answer_tokens) / sum(times), 1),
          "tokens_per_step": round(sum(tokens) / len(tokens), 1), "steps": len(times), "losses": losses,
          "trainable_params": trainable, "threads": torch.get_num_threads(), "torch": torch.__version__,
          "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
          "load_avg": [load0, load_average()]})


def gpu_visible() -> str | None:
    run = run_child([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0) "
                     "if torch.cuda.is_available() else '')"])
    name = run["stdout"].strip()
    return name or None


def library_reference() -> dict | None:
    """What the library trainer recorded for the shipped conll2003 expert (its own loop, its load)."""
    try:
        from samedge.library import Library
        t = Library.open().get(DOMAIN, verify=False).manifest["training"]
        return {"steps": t["steps"], "seconds": t["seconds"], "tokens": t["tokens"], "device": t["device"],
                "batch": t["hyperparameters"]["batch_size"]}
    except Exception:   # the library may be mid-rebuild
        return None


def report(data: dict) -> str:
    cfg = data["config"]
    rows = []
    for key, spec in plan(cfg):
        r = data["rows"].get(key)
        if r is None:
            continue
        if r.get("skipped"):
            rows.append([spec_label(spec), "-", "-", "-", "-", "-", "-", r["skipped"]])
            continue
        res = r["result"]
        rows.append([spec_label(spec), res["threads"] if spec["device"] == "cpu" else res["gpu"],
                     f"{res['s_per_step']:.2f}", f"{res['tokens_per_s']:.0f}", f"{res['answer_tokens_per_s']:.0f}",
                     f"{res['tokens_per_step']:.0f}", f"{r['peak_rss_mb']:.0f}",
                     fmt_load([res["load_avg"][0][0], res["load_avg"][1][0]])])
    out = ["## Training throughput (LoRA on SmolLM2-135M)\n",
           f"samedge.train's step (`batch_loss`) on the real SmolLM2-135M-Instruct (fp32 weights), the default LoRA config "
           f"(r=8, alpha 16, 7 projections, {data.get('trainable', '?')} trainable parameters), AdamW, batch "
           f"{cfg['batch']}, CoNLL-2003 training examples in samedge's prompt format (loss on the answer). "
           f"{cfg['warmup']} warm-up step, then {cfg['steps']} timed steps; s/step is the median; tokens/s "
           "counts every non-padding token (answer tokens/s: those under the loss). Each row is one child "
           "process (peak RSS: its high-water mark). *before*: batches drawn at random, logits at every "
           "position, fp32 (the step until 2026-12-02); *after*: length-bucketed batches (16 batches sorted "
           "together), logits only at the answer positions (left padding), bf16 autocast (this CPU has "
           "avx512_bf16): the trainer's defaults; *after+checkpointing* adds gradient checkpointing "
           "(`gradient_checkpointing = true`).\n",
           table(["device", "threads / GPU", "s/step", "tokens/s", "answer tokens/s", "tokens/step",
                  "peak RSS MB", "load avg (start, end)"], rows), ""]
    ref = data.get("library")
    if ref:
        out.append(f"- For reference, the library trainer's own record for the shipped `{DOMAIN}` expert "
                   f"({ref['device']}, batch {ref['batch']}, {ref['steps']} steps, run in the background "
                   f"alongside other jobs): {ref['seconds'] / ref['steps']:.1f} s/step, "
                   f"{ref['tokens'] / ref['seconds']:.0f} tokens/s.")
    for threads in cfg["threads"]:
        before = data["rows"].get(f"cpu_t{threads}_before")
        for step in STEPS[1:]:
            row = data["rows"].get(f"cpu_t{threads}_{step}")
            if before and row and "result" in before and "result" in row:
                b, a = before["result"]["s_per_step"], row["result"]["s_per_step"]
                out.append(f"- {threads} thread(s), *{step}*: {a:.2f} s a step against {b:.2f} s ({b / a:.2f}x "
                           f"faster), peak RSS {row['peak_rss_mb']:.0f} MB against {before['peak_rss_mb']:.0f} MB, "
                           "same documents, same run.")
    out.append(data.get("gpu_note", ""))
    m = data["machine"]
    out += [f"- Machine: {m['cpu']}, {m['cores']} cores; load average at start {fmt_load(m['load_at_start'])} "
            "(1/5/15 min).",
            f"- Measured {data['started']} - {data.get('finished', '?')} with `{data['command']}`; "
            f"Python {m['python']}, torch {data.get('torch', '?')}."]
    return "\n".join(x for x in out if x)


def spec_label(spec: dict) -> str:
    device = "CPU" if spec["device"] == "cpu" else "GPU (CUDA, bf16 autocast)"
    return f"{device}, step {spec['step']}"


def plan(cfg: dict) -> list[tuple[str, dict]]:
    common = {"steps": cfg["steps"], "warmup": cfg["warmup"], "batch": cfg["batch"], "docs": cfg["docs"]}
    rows = [(f"cpu_t{t}_{step}", dict(common, device="cpu", threads=t, step=step))
            for t in cfg["threads"] for step in STEPS]
    rows.append(("cuda", dict(common, device="cuda", threads=0, step="after")))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts, one row each")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--docs", type=int, default=2000, help="training documents to draw batches from")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.report_only:
        data = State.last(STATE)
        if not data:
            raise SystemExit(f"no saved run in {STATE}")
        publish(NAME, report(data), write=not args.no_write)
        return

    cfg = {"threads": [int(t) for t in args.threads.split(",")], "steps": args.steps, "warmup": args.warmup,
           "batch": args.batch, "docs": args.docs}
    state = State(STATE, cfg, fresh=args.fresh)
    if state.resumed:
        print(f"resuming the run started {state.data['started']} ({len(state.rows)} rows done)")
    state.data["command"] = COMMAND + "".join(" " + a for a in sys.argv[1:] if a != "--fresh")
    state.data["library"] = library_reference()
    state.save()
    for key, spec in plan(cfg):
        if state.has(key):
            continue
        if spec["device"] == "cuda":
            name = gpu_visible()
            if not name:
                print("GPU: no GPU")
                state.put(key, {"skipped": "no GPU on this machine"})
                state.data["gpu_note"] = ("- GPU: no GPU here (this task has no lent GPU machine either); "
                                          "the row is kept for hosts with CUDA, where this script measures it.")
                state.save()
                continue
        print(f"[{now()}] {key}: {spec['steps']} steps, batch {spec['batch']}, load {fmt_load(load_average())} ...",
              flush=True)
        run = run_child([sys.executable, __file__, "--child", json.dumps(spec)], timeout=args.timeout)
        if run["rc"] != 0 or not run["result"]:
            raise SystemExit(f"{key}: " + child_failed(run))
        res = run["result"]
        print(f"    {res['s_per_step']:.2f} s/step, {res['tokens_per_s']:.0f} tokens/s, peak RSS "
              f"{run['peak_rss_mb']:.0f} MB", flush=True)
        state.data["trainable"] = res["trainable_params"]
        state.data["torch"] = res["torch"]
        state.put(key, {"spec": spec, "result": res, "peak_rss_mb": run["peak_rss_mb"]})
    state.finish()
    publish(NAME, report(state.data), write=not args.no_write)


if __name__ == "__main__":
    main()
