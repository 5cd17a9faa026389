"""Exact LoRA deltas, checked before any merge.

ΔW = scaling · B · A per adapted module (PEFT's scaling: merge.lora), in float32 and HF layout. Experts
are refused (never skipped) for a different base, an incomplete A/B pair, a
module the others do not adapt, a shape mismatch, or NaN/Inf.
"""

from __future__ import annotations

import numpy as np

from ..errors import MergeError
from .lora import lora_module


def lora_pairs(expert) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """module path -> (A [r, in], B [out, r]) as float32."""
    halves: dict[str, dict] = {}
    for key, value in expert.tensors().items():
        module, which = lora_module(key)
        if not np.isfinite(value).all():
            raise MergeError(f"expert {expert.name}: {key} contains NaN or Inf")
        halves.setdefault(module, {})[which] = value
    pairs = {}
    for module, ab in halves.items():
        if set(ab) != {"A", "B"}:
            raise MergeError(f"expert {expert.name}: {module} has lora_{'A' if 'A' in ab else 'B'} but not its pair")
        a, b = ab["A"], ab["B"]
        if a.shape[0] != b.shape[1]:
            raise MergeError(f"expert {expert.name}: {module} has A {a.shape} and B {b.shape} of different ranks")
        pairs[module] = (a, b)
    return pairs


def check_compatible(experts: list, base_id: str) -> list[dict]:
    """Every expert on ``base_id`` and adapting the same modules; returns their LoRA pairs."""
    if not experts:
        raise MergeError("nothing to merge: no experts selected")
    for e in experts:
        if e.base_id != base_id:
            raise MergeError(f"expert {e.name} was trained on base {e.base_id[:12]}, not {base_id[:12]}; "
                             "experts of different bases cannot be merged")
    pairs = [lora_pairs(e) for e in experts]
    modules = set(pairs[0])
    for e, p in zip(experts[1:], pairs[1:]):
        if set(p) != modules:
            diff = sorted(modules ^ set(p))
            raise MergeError(f"experts {experts[0].name} and {e.name} adapt different modules (e.g. {diff[0]})")
    for module in modules:
        shapes = {(p[module][1].shape[0], p[module][0].shape[1]) for p in pairs}
        if len(shapes) > 1:
            raise MergeError(f"experts disagree on the shape of {module}: {sorted(shapes)}")
    return pairs


def delta(pair: tuple[np.ndarray, np.ndarray], scale: float) -> np.ndarray:
    a, b = pair
    return (np.float32(scale) * (b @ a)).astype(np.float32)
