"""LoRA supervised fine-tuning of one domain expert (or the unified baseline) with PEFT.

The loop is written out (no HF Trainer) so that it is short, deterministic for a
fixed seed on CPU, resumable from a checkpoint, and runs unchanged under
``accelerate launch`` (data parallel: each process takes its share of every
global batch). The loss of a step is the sum over the answer tokens of the whole
global batch divided by their number, whatever share of it a process holds, so
that N processes compute the single-process gradient (up to float rounding; see
tests/test_train_accelerate.py).

Each training example is the prompt of samedge.extract.prompts for one sentence, with
the domain's labels plus 0..max_negatives absent labels, shuffled, so that the
expert transfers zero-shot to label sets it has not seen. The loss is on the
answer tokens only.

torch, transformers and peft are imported here and in the HF paths only.
"""

from __future__ import annotations

import random
import time
import tomllib
from importlib import resources
from pathlib import Path

from ..config import parse_overrides, train_config  # noqa: F401  (samedge.train.parse_overrides: scripts use it)
from ..errors import UserError
from ..files import atomic_dir, atomic_path
from . import checkpoints
from .examples import Source, batch_plan, capped_empties, encode_example, example_rng, make_example, planned_steps
from .memory import keep_freed_memory, release_freed_memory
from .recipe import Recipe

PRECISIONS = ("auto", "bf16", "fp32")


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions, where bf16 autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


# --- configuration -------------------------------------------------------------

def default_config() -> dict:
    return tomllib.loads(resources.files("samedge.train").joinpath("train_defaults.toml").read_text())


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then a user TOML file, then ``--set key=value`` overrides; unknown keys and wrong
    types are refused (samedge.config.TrainConfig)."""
    updates = {}
    if path is not None:
        try:
            updates.update(tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: cannot read training config ({e})") from None
    updates.update(overrides or {})
    return train_config({**default_config(), **updates})


# --- training --------------------------------------------------------------------

def _lora_config(config: dict):
    from peft import LoraConfig

    return LoraConfig(r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
                      target_modules=list(config["target_modules"]), bias="none", task_type="CAUSAL_LM")


def train(sources: list[Source], out: str | Path, *, name: str, config: dict, base=None,
          resume: bool = False, progress: bool = True, force: bool = False, init_from=None) -> dict:
    """Train one adapter on ``sources`` (one for an expert, several for the unified model) and
    write the expert folder ``out`` (adapter, expert.json). Returns the manifest.

    ``init_from`` (an expert folder) starts from that expert's adapter instead of a fresh one:
    a shipped expert can learn a new recipe in a fraction of its original steps."""
    import torch
    from accelerate import Accelerator
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..base import provision
    from ..files import check_name

    check_name(name, "expert name")
    out = Path(out)
    if out.exists() and (out / "expert.json").exists() and not force:
        raise UserError(f"{out} already holds an expert (use --force to replace it)")
    work = out.with_name(out.name + ".work")  # checkpoints live beside the output, not in it
    ckpt = work / checkpoints.CHECKPOINT_DIR
    if ckpt.exists() and not resume:
        raise UserError(f"{ckpt} exists from an interrupted run: pass --resume to continue it, or delete it")

    if config["precision"] not in PRECISIONS:
        raise UserError(f"training option precision must be one of {', '.join(PRECISIONS)}, got {config['precision']!r}")
    bf16 = config["precision"] == "bf16" or config["precision"] == "auto" and (
        torch.cuda.is_available() or cpu_has_bf16())
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision="bf16" if cuda and bf16 else "no", cpu=not cuda)
    cpu_autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and not cuda)
    with accelerator.main_process_first():  # one process fills the base cache, the others then read it
        base_model = provision(base, hf=True)
    keep_freed_memory()  # memory.py: a step reuses the last one's blocks, no page faults
    torch.manual_seed(config["seed"])
    random.seed(config["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base_model.hf)
    model = AutoModelForCausalLM.from_pretrained(base_model.hf, dtype=torch.float32)
    model.config.use_cache = False
    if config["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # Each step renders its documents afresh (samedge.train.recipe), from a seeded RNG per example.
    recipe = Recipe.from_config(config)
    items = [(doc, src.labels) for src in sources
             for doc in capped_empties(src.train, config["max_empty_share"], config["seed"])]
    if not items:
        raise UserError("no training documents")
    if config["batch_size"] < accelerator.num_processes:
        raise UserError(f"batch_size {config['batch_size']} is smaller than the {accelerator.num_processes} "
                        f"processes: each process needs at least one example per step")
    steps = planned_steps(len(items), config, len(sources))
    lengths = [len(doc["text"]) + sum(len(e["text"]) for e in doc["entities"]) for doc, _ in items]
    plan = batch_plan(len(items), config["batch_size"], steps, config["seed"], lengths)

    def render(step: int) -> list:
        """The global batch of ``step``, encoded; examples longer than max_length are left out."""
        encoded = []
        for slot, i in enumerate(plan[step]):
            doc, labels = items[i]
            enc = encode_example(tokenizer, *make_example(doc, labels, example_rng(config["seed"], step, slot),
                                                          recipe), config["max_length"])
            encoded.append(enc)
        return encoded

    _check_fit(render, steps, config["max_length"], name)

    start = None
    if init_from is not None:
        from ..library.experts import load_expert
        start = load_expert(init_from)  # sha256-checked
        # A warm start continues the expert's own adapter, so it keeps that adapter's rank and alpha
        # (shipped experts are stored at rank 6, below train_defaults' 8): the manifest says so.
        config = {**config, "r": start.manifest["lora"]["r"], "alpha": start.manifest["lora"]["alpha"]}
    start_step = 0
    if resume and checkpoints.saved_step(ckpt) is not None:
        model = PeftModel.from_pretrained(model, ckpt / checkpoints.ADAPTER_DIR, is_trainable=True)
        start_step = checkpoints.saved_step(ckpt)
    elif start is not None:
        model = PeftModel.from_pretrained(model, start.path, is_trainable=True)
        model = model.float()
    else:
        model = get_peft_model(model, _lora_config(config))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"],
                                  weight_decay=config["weight_decay"])
    warmup = max(1, min(config["warmup_steps"], steps))
    # Linear warm-up, then linear decay to zero at the last step.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    if start_step:
        checkpoints.restore(ckpt, optimizer, scheduler)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    losses, tokens_seen, skipped, started = [], 0, 0, time.time()
    bar = _progress(steps, start_step, progress and accelerator.is_main_process, name)
    for step in range(start_step, steps):
        encoded = render(step)
        skipped += sum(enc is None for enc in encoded)
        # Each process takes its share of the global batch (data parallel under accelerate).
        shares = [[enc for enc in encoded[p::accelerator.num_processes] if enc is not None]
                  for p in range(accelerator.num_processes)]
        batch = shares[accelerator.process_index]
        answer_tokens = sum(_n_answer(enc) for share in shares for enc in share)
        if not all(shares):  # a share left empty by too-long examples: every process skips the step alike
            bar.update(1)
            continue
        with cpu_autocast:
            loss, n_tokens = batch_loss(model, batch, pad_id, accelerator.device, answer_tokens)
        accelerator.backward(loss * accelerator.num_processes)  # DDP averages gradients over the processes
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        release_freed_memory()
        losses.append(float(accelerator.reduce(loss.detach().reshape(1), reduction="sum")[0]))  # the batch's mean
        tokens_seen += n_tokens
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % config["checkpoint_every"] == 0 and step + 1 < steps and accelerator.is_main_process:
            checkpoints.save(accelerator.unwrap_model(model), optimizer, scheduler, step + 1, ckpt)
    bar.close()
    seconds = time.time() - started

    manifest = None
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        model.eval()
        training = {"domains": [s.domain for s in sources], "examples": len(items), "skipped_too_long": skipped,
                    "steps": steps, "resumed_from": start_step, "seconds": round(seconds, 1),
                    "tokens": tokens_seen, "device": str(accelerator.device), "bf16": bf16,
                    "processes": accelerator.num_processes, "hyperparameters": config,
                    "initialised_from": _provenance(start),
                    "first_losses": [round(x, 4) for x in losses[:5]], "last_losses": [round(x, 4) for x in losses[-5:]]}
        manifest = finish_expert(model, tokenizer, sources, out, name=name, base=base_model, config=config,
                                 training=training, force=force, progress=progress)
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    accelerator.wait_for_everyone()
    return manifest


FIT_PROBE_STEPS = 4  # batches rendered before training to check that examples fit max_length
FIT_MIN_SHARE = 0.5  # below this share of fitting examples, training would learn from almost nothing


def _check_fit(render, steps: int, max_length: int, name: str) -> None:
    """Stop before training when most examples exceed max_length: they would be left out silently
    and the run would "finish" having learnt nothing (a domain with many labels has a long prompt)."""
    probe = [enc for step in range(min(FIT_PROBE_STEPS, steps)) for enc in render(step)]
    fitting = sum(enc is not None for enc in probe)
    if probe and fitting / len(probe) < FIT_MIN_SHARE:
        raise UserError(f"{name}: only {fitting} of {len(probe)} sampled examples fit max_length={max_length} "
                        f"tokens; raise it (--set max_length=...)")


def batch_loss(model, batch, pad_id: int, device, answer_tokens: int, answer_logits_only: bool = True):
    """(loss, non-padding tokens) of one process's share of a step.

    Answers end every row (left padding), so only the last ``keep`` positions need logits:
    the vocabulary projection (49k columns) and its fp32 copy are the biggest tensors of a
    step, and most positions are prompt. ``answer_logits_only=False`` computes them all
    (the old step, kept for the throughput benchmark's baseline)."""
    input_ids, labels, mask, positions = _left_padded(batch, pad_id, device)
    keep = max(sum(1 for t in lab if t != -100) for _, lab in batch) + 1 if answer_logits_only else 0
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    return _step_loss(logits, labels[:, -keep:] if keep else labels, answer_tokens), int(mask.sum())


def _provenance(start) -> dict | None:
    """What a warm-started expert started from: its name, adapter sha256 and training steps."""
    if start is None:
        return None
    m = start.manifest
    return {"name": m["name"], "adapter_sha256": m["files"]["adapter_model.safetensors"],
            "steps": m.get("training", {}).get("steps"),
            "initialised_from": m.get("training", {}).get("initialised_from")}


def _left_padded(batch, pad_id: int, device):
    """Tensors for a batch padded on the left, with position ids that skip the padding."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    pad = [width - len(ids) for ids, _ in batch]
    input_ids = torch.tensor([[pad_id] * p + ids for p, (ids, _) in zip(pad, batch)], device=device)
    labels = torch.tensor([[-100] * p + lab for p, (_, lab) in zip(pad, batch)], device=device)
    mask = torch.tensor([[0] * p + [1] * len(ids) for p, (ids, _) in zip(pad, batch)], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, labels, mask, positions


def _n_answer(example) -> int:
    """Tokens of an example that carry loss (the first token is never a target)."""
    return sum(1 for lab in example[1][1:] if lab != -100)


def _step_loss(logits, labels, answer_tokens: int):
    """Next-token cross entropy summed over this process's answer tokens, divided by the answer tokens
    of the whole global batch: the processes' losses add up to the single-process mean."""
    import torch.nn.functional as F

    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                            reduction="sum")
    return total / max(1, answer_tokens)


def _progress(total: int, initial: int, enabled: bool, name: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=not enabled, desc=f"train {name}", unit="step")


# --- the expert folder -----------------------------------------------------------

def save_adapter(model, dest: Path, dtype: str) -> None:
    """PEFT's adapter files, with the LoRA tensors cast to ``dtype`` (fp16 halves the library size)."""
    import torch
    from safetensors.torch import load_file, save_file

    model.save_pretrained(dest, safe_serialization=True)
    path = dest / "adapter_model.safetensors"
    tensors = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in load_file(path).items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    readme = dest / "README.md"  # PEFT's model-card template: not ours to ship
    if readme.exists():
        readme.unlink()


def dev_f1(model, tokenizer, labels, dev_docs: list[dict], n: int, answer_tokens: int = 160) -> dict:
    """Micro F1 of ``model`` on the first ``n`` dev documents (greedy, HF engine)."""
    from ..evaluate import score_documents
    from ..extract.extractor import Extractor
    from ..extract.engines.hf import HFEngine

    docs = dev_docs[:n]
    if not docs:
        return {"f1": None, "sentences": 0}
    extractor = Extractor(HFEngine(model, tokenizer), labels, answer_tokens=answer_tokens)
    preds = extractor.extract_many([d["text"] for d in docs], ids=[d["id"] for d in docs])
    report = score_documents(docs, preds)
    return {"f1": round(100 * report.micro.f1, 2), "precision": round(100 * report.micro.precision, 2),
            "recall": round(100 * report.micro.recall, 2), "sentences": len(docs)}


def finish_expert(model, tokenizer, sources, out: Path, *, name, base, config, training, force, progress) -> dict:
    """Evaluate on dev, compute the domain centroid, write adapter + expert.json atomically."""
    from ..library.experts import write_expert

    labels = sources[0].labels if len(sources) == 1 else _union_labels(sources)
    dev = {s.domain: dev_f1(model, tokenizer, s.labels, s.dev, config["dev_sentences"], config["dev_answer_tokens"])
           for s in sources}
    texts = [d["text"] for s in sources for d in s.train]
    with atomic_dir(out, overwrite=force) as tmp:
        save_adapter(model, tmp, config["save_dtype"])
        manifest = write_expert(tmp, name=name, domain=",".join(s.domain for s in sources),
                                description="; ".join(s.description for s in sources if s.description),
                                labels=labels, base=base.identity(), training=training, dev=dev,
                                lora={"r": config["r"], "alpha": config["alpha"],
                                      "target_modules": list(config["target_modules"]),
                                      "dtype": config["save_dtype"]},
                                centroid_texts=texts, max_centroid_texts=config["centroid_texts"],
                                licence=" AND ".join(dict.fromkeys(s.licence for s in sources if s.licence)))
    return manifest


def _union_labels(sources) -> list:
    seen, out = set(), []
    for s in sources:
        for lab in s.labels:
            if lab.name not in seen:
                seen.add(lab.name)
                out.append(lab)
    return out
