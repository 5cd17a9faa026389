"""LoRA training throughput (tokens/s) of samedge's expert training on the real SmolLM2-135M.

    nice -n 5 python benchmarks/train_throughput.py            # writes its BENCHMARKS.md section
    python benchmarks/train_throughput.py --steps 10 --threads 2 --no-write
    python benchmarks/train_throughput.py --report-only

The loop is samedge.train's step, written out: the same base (fp32 HF folder from
``provision(hf=True)``), the same LoRA config and optimizer (``load_config()`` defaults: r=8,
alpha 16, all 7 linear projections, AdamW), the same examples (``catalog_source('conll2003')``
through ``make_example``/``encode_example``: prompt + answer, loss on the answer only) and the
same batching (``batch_plan``, right padding). Each row runs in its own child process:
``--warmup`` steps (not timed), then ``--steps`` timed steps (forward, backward, optimizer
step). tokens/s counts every non-padding token of the batch (prompt and answer, as the trainer's
"tokens" does); answer tokens/s counts those the loss is on.

Rows: CPU with 1 and 2 threads (fp32), and CUDA (bf16 autocast, as the trainer's accelerate
``mixed_precision="bf16"``) when a GPU is visible; otherwise the GPU row says "no GPU". The
machine is shared (the library trainer itself runs in the background), so the load average is
recorded with every row. Resumable: rows are saved in runs/benchmarks/train_throughput.json.
Needs the train extra (torch, transformers, peft).
"""

from __future__ import annotations

import argparse
import json
import random
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


def child(spec: dict) -> None:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from samedge.base import provision
    from samedge.train import _lora_config, batch_plan, catalog_source, encode_example, load_config, make_example

    device = spec["device"]
    if device == "cpu":
        torch.set_num_threads(spec["threads"])
    config = load_config(overrides={"batch_size": spec["batch"]})
    torch.manual_seed(config["seed"])
    base = provision(hf=True)
    tokenizer = AutoTokenizer.from_pretrained(base.hf)
    model = AutoModelForCausalLM.from_pretrained(base.hf, dtype=torch.float32)
    model.config.use_cache = False
    src = catalog_source(DOMAIN)
    rng = random.Random(config["seed"])
    examples = []
    for doc in src.train[:spec["docs"]]:
        enc = encode_example(tokenizer, *make_example(doc, src.labels, rng, config["max_negatives"]),
                             config["max_length"])
        if enc is not None:
            examples.append(enc)
    model = get_peft_model(model, _lora_config(config)).to(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"],
                                  weight_decay=config["weight_decay"])
    model.train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total = spec["warmup"] + spec["steps"]
    plan = batch_plan(len(examples), spec["batch"], total, config["seed"])
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda"
                else torch.autocast("cpu", enabled=False))
    times, tokens, answer_tokens, losses = [], [], [], []
    load0 = load_average()
    for step in range(total):
        batch = [examples[i] for i in plan[step]]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch], device=device)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch], device=device)
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch], device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with autocast:
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        if step >= spec["warmup"]:
            times.append(dt)
            tokens.append(int(mask.sum()))
            answer_tokens.append(int((labels != -100).sum()))
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
           f"samedge.train's step on the real SmolLM2-135M-Instruct (fp32 weights), the default LoRA config "
           f"(r=8, alpha 16, 7 projections, {data.get('trainable', '?')} trainable parameters), AdamW, batch "
           f"{cfg['batch']}, CoNLL-2003 training examples in samedge's prompt format (loss on the answer). "
           f"{cfg['warmup']} warm-up step, then {cfg['steps']} timed steps; s/step is the median; tokens/s "
           "counts every non-padding token (answer tokens/s: those under the loss). Each row is one child "
           "process (peak RSS: its high-water mark).\n",
           table(["device", "threads / GPU", "s/step", "tokens/s", "answer tokens/s", "tokens/step",
                  "peak RSS MB", "load avg (start, end)"], rows), ""]
    ref = data.get("library")
    if ref:
        out.append(f"- For reference, the library trainer's own record for the shipped `{DOMAIN}` expert "
                   f"({ref['device']}, batch {ref['batch']}, {ref['steps']} steps, run in the background "
                   f"alongside other jobs): {ref['seconds'] / ref['steps']:.1f} s/step, "
                   f"{ref['tokens'] / ref['seconds']:.0f} tokens/s.")
    cpu = {r[1]: r for r in rows if r[0].startswith("CPU") and r[1] != "-"}
    if 1 in cpu and 2 in cpu:
        a, b = float(cpu[1][3]), float(cpu[2][3])
        out.append(f"- 2 threads / 1 thread: {b / a:.2f}x tokens/s on this busy 2-core machine.")
    out.append(data.get("gpu_note", ""))
    m = data["machine"]
    out += [f"- Machine: {m['cpu']}, {m['cores']} cores; load average at start {fmt_load(m['load_at_start'])} "
            "(1/5/15 min).",
            f"- Measured {data['started']} - {data.get('finished', '?')} with `{data['command']}`; "
            f"Python {m['python']}, torch {data.get('torch', '?')}."]
    return "\n".join(x for x in out if x)


def spec_label(spec: dict) -> str:
    return "CPU fp32" if spec["device"] == "cpu" else "GPU (CUDA, bf16 autocast)"


def plan(cfg: dict) -> list[tuple[str, dict]]:
    common = {"steps": cfg["steps"], "warmup": cfg["warmup"], "batch": cfg["batch"], "docs": cfg["docs"]}
    rows = [(f"cpu_t{t}", dict(common, device="cpu", threads=t)) for t in cfg["threads"]]
    rows.append(("cuda", dict(common, device="cuda", threads=0)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts, one row each")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per row")
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
