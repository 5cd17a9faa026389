"""Llama-family tensor layout: HF names <-> GGUF names, and the q/k row permutation.

llama.cpp stores the rows of ``q_proj``/``k_proj`` in an interleaved rotary
order. HF stores each head as [first half | second half]; GGUF interleaves the
halves. Whatever writes a q/k weight, or a q/k *delta* (ΔW = B·A, so the rows
of B), into a GGUF file must apply :func:`permute_qk` to it, and whatever reads
one back into HF order applies :func:`unpermute_qk`.
"""

from __future__ import annotations

import re

import numpy as np

# HF module path (inside a layer) -> GGUF tensor stem.
LAYER_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_GGUF_LAYER_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")


def hf_to_gguf_name(name: str) -> str:
    """Map an HF llama tensor name to its GGUF name; KeyError if unknown."""
    if name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[name]
    m = _LAYER_RE.match(name)
    if not m or m.group(2) not in LAYER_MODULES:
        raise KeyError(f"no GGUF name for tensor {name!r}")
    return f"blk.{m.group(1)}.{LAYER_MODULES[m.group(2)]}.{m.group(3)}"


def gguf_to_hf_name(name: str) -> str:
    inverse_global = {v: k for k, v in GLOBAL_TENSORS.items()}
    if name in inverse_global:
        return inverse_global[name]
    m = _GGUF_LAYER_RE.match(name)
    inverse = {v: k for k, v in LAYER_MODULES.items()}
    if not m or m.group(2) not in inverse:
        raise KeyError(f"no HF name for GGUF tensor {name!r}")
    return f"model.layers.{m.group(1)}.{inverse[m.group(2)]}.{m.group(3)}"


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF rotary layout -> GGUF interleaved layout, along the rows (axis 0).

    For ``k_proj`` pass the number of KV heads. Works for weights [out, in],
    LoRA B matrices [out, r] and biases [out].
    """
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"{rows} rows do not split into {n_heads} heads of 2 halves")
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of :func:`permute_qk`."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def qk_heads(gguf_stem: str, n_head: int, n_head_kv: int) -> int | None:
    """Heads to permute with for a GGUF tensor stem, or None if not q/k."""
    return {"attn_q": n_head, "attn_k": n_head_kv}.get(gguf_stem)
