"""Write the "Expert library" section of BENCHMARKS.md from the shipped experts' manifests.

    python scripts/library_report.py
"""

from __future__ import annotations

import math

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def section() -> str:
    from samedge.library import Library, shipped_library

    experts = Library([shipped_library()]).experts()
    models = sum(p.stat().st_size for p in (ROOT / "models").rglob("*") if p.is_file())
    lines = ["## Expert library (models/experts)", "",
             "| expert | steps x batch | train examples | device precision, seconds | dev F1 (sentences) | size |",
             "|---|---|---|---|---|---|"]
    for e in experts:
        t = e.manifest["training"]
        dev = "; ".join(f"{v.get('f1')} ({v.get('sentences')})" for v in e.manifest["dev"].values())
        lines.append(f"| {e.name} | {t['steps']} x {t['hyperparameters']['batch_size']} | {t['examples']} | "
                     f"{t['device']}{PRECISION.get(t.get('bf16'), '')}, {t['seconds']:.0f}{resumed(t)} | {dev} | "
                     f"{e.size / 1e6:.1f} MB |")
    lora = experts[0].manifest["lora"] if experts else {}
    trained = lora.get("truncated_from", lora)
    from samedge.library import MODELS_BUDGET_BYTES, SHIPPED_RANK
    from samedge.train import load_config

    recipe = load_config()
    short = [e for e in experts if e.manifest["training"]["steps"] < full_budget(e.manifest["training"], recipe)]
    lines += ["", f"- Trained as LoRA r={trained.get('r')}, alpha={trained.get('alpha')} on "
              f"{', '.join(lora.get('target_modules', []))} (train_defaults.toml), then stored at rank "
              f"{lora.get('r')} ({lora.get('dtype')}) by SVD truncation of each delta "
              f"(`samedge.library.SHIPPED_RANK` = {SHIPPED_RANK}; BENCHMARKS.md \"Library budget\": -0.6 mean dev F1), "
              f"so that {len(experts)} experts and the embedder fit the {MODELS_BUDGET_BYTES / 1e6:.0f} MB of `models/`. "
              "The dev F1 column is the expert as trained, before truncation.",
              f"- `models/` holds {models / 1e6:.2f} MB now.",
              "- Dev F1 is greedy decoding through transformers on the first dev sentences of the domain "
              "(a held-out 10% of train where the domain has no dev split).",
              "- Recipe: `python scripts/train_library.py --max-steps 300 --set dev_sentences=16` (300 steps x batch "
              "8, capped at 10 epochs for the small CrossNER sets). The cuda experts shared one H100 (15 processes at "
              "once, so their seconds are not a per-expert speed); the cpu ones ran on a 2-core machine, one thread "
              "each, two at a time, with bf16 autocast where the CPU has it. "
              + ("Still short of the recipe (trained before a GPU session ran out): "
                 + ", ".join(f"**{e.name} ({e.manifest['training']['steps']} steps)**" for e in short) + "."
                 if short else "Every expert has its full budget."),
              "- Reproduce this table: `python scripts/library_report.py`."]
    return "\n".join(lines)


# The manifest's bf16 flag; experts trained before it was recorded show the device alone.
PRECISION = {True: " bf16", False: " fp32"}


def resumed(training: dict) -> str:
    """A resumed run's seconds cover only its last part: say from which step."""
    return f" (steps {training['resumed_from']}-{training['steps']})" if training.get("resumed_from") else ""


def full_budget(training: dict, recipe: dict) -> int:
    """The steps ``recipe`` (train_defaults.toml) gives an expert: max_steps, or fewer when
    max_epochs passes over its examples end first."""
    return min(recipe["max_steps"], math.ceil(recipe["max_epochs"] * training["examples"] / recipe["batch_size"]))


def main() -> int:
    from benchmarks.common import write_section

    block = section()
    write_section("library", block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
