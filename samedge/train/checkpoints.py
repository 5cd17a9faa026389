"""Checkpoints of an interrupted training run: the adapter, optimizer, scheduler and RNG state at a step.

They live in ``OUT.work/checkpoint`` beside the expert being trained; ``samedge train --resume``
continues from the last one exactly (the RNG state included).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..files import atomic_dir, atomic_write_json

CHECKPOINT_DIR = "checkpoint"
ADAPTER_DIR = "adapter"
STATE = "state.json"


def _rng_state():
    import torch
    return {"python": random.getstate(), "torch": torch.get_rng_state()}


def saved_step(ckpt: Path) -> int | None:
    """The step the checkpoint at ``ckpt`` was taken after; None when there is none."""
    state = ckpt / STATE
    return json.loads(state.read_text())["step"] if state.exists() else None


def save(model, optimizer, scheduler, step: int, ckpt: Path) -> None:
    import torch

    with atomic_dir(ckpt, overwrite=True) as tmp:
        model.save_pretrained(tmp / ADAPTER_DIR, safe_serialization=True)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(_rng_state(), tmp / "rng.pt")
        atomic_write_json(tmp / STATE, {"step": step})


def restore(ckpt: Path, optimizer, scheduler) -> None:
    """Load the optimizer, scheduler and RNG state saved with the checkpoint (the adapter is PEFT's to load)."""
    import torch

    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    rng_state = torch.load(ckpt / "rng.pt", weights_only=False)  # our own file, written by save()
    random.setstate(rng_state["python"])
    torch.set_rng_state(rng_state["torch"])
