"""Merging into the GGUF f16 base with numpy: the laptop path, no torch.

For each adapted matrix the experts' exact deltas (HF layout) are combined by
the chosen method, the q/k rows are permuted into llama.cpp's order exactly as
the converter permutes the weights, and the result is added to the base
tensor. One tensor is in memory at a time; the output is byte-identical for
the same inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..converters.gguf_io import field_value, open_gguf, tensor_shape, write_gguf_like
from ..converters.llama_layout import hf_to_gguf_name, permute_qk, qk_heads

from ..errors import MergeError
from .deltas import check_compatible, delta
from .registry import get_method


def merged_deltas(experts, weights, method: str, params: dict | None, base_id: str):
    """Validate everything up front, then return (module -> f() giving the merged HF-layout delta, params)."""
    if len(weights) != len(experts):
        raise MergeError(f"{len(experts)} experts but {len(weights)} weights")
    if not all(np.isfinite(w) for w in weights):
        raise MergeError(f"merge weights must be finite numbers, got {weights}")
    spec = get_method(method)
    params = spec.validate(params)
    pairs = check_compatible(experts, base_id)

    def make(module):
        def merged() -> np.ndarray:
            deltas = [delta(p[module], e.scaling(module)) for p, e in zip(pairs, experts)]
            return spec.fn(deltas, list(weights), seed_key=module, **params)
        return merged
    return {module: make(module) for module in sorted(pairs[0])}, params


def merge_into_gguf(base_gguf: str | Path, base_id: str, experts, weights, method: str, dest: str | Path,
                    params: dict | None = None, out_type: str = "f16") -> dict:
    """Write ``base + merge(deltas)`` to ``dest`` (GGUF). Returns the validated parameters."""
    modules, params = merged_deltas(experts, weights, method, params, base_id)
    reader = open_gguf(base_gguf)
    n_head = int(field_value(reader, "llama.attention.head_count"))
    n_head_kv = int(field_value(reader, "llama.attention.head_count_kv", n_head))
    shapes = {t.name: tensor_shape(t) for t in reader.tensors}

    replace = {}
    for module, merged in modules.items():
        name = hf_to_gguf_name(module + ".weight")
        if name not in shapes:
            raise MergeError(f"the base has no tensor {name} for adapted module {module}")
        heads = qk_heads(name.split(".")[-2], n_head, n_head_kv)

        def add_delta(base_values, merged=merged, heads=heads, name=name):
            d = merged()
            if d.shape != base_values.shape:
                raise MergeError(f"{name}: delta shape {d.shape} does not match the base's {base_values.shape}")
            if heads is not None:
                d = permute_qk(d, heads)
            return base_values + d
        replace[name] = add_delta
    write_gguf_like(reader, dest, replace, out_type)
    return params
