"""Tiny random llama models built in-process for the maths and plumbing tests."""

from __future__ import annotations

import os


def make_tiny_llama(path: str | os.PathLike | None = None, *, hidden: int = 64, layers: int = 2,
                    heads: int = 4, kv_heads: int = 2, vocab_from_smollm: bool = True, seed: int = 0):
    """A 2-layer llama (hidden 64) with SmolLM2's tokenizer when available.

    Returns ``(model, tokenizer)``; with ``path`` both are saved there as
    safetensors. Uses torch/transformers, so only the train/HF tests call it.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = None
    vocab = 512
    if vocab_from_smollm:
        from samedge.base import load_base_tokenizer
        tokenizer = load_base_tokenizer()
        vocab = len(tokenizer)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, max_position_embeddings=512,
                      rms_norm_eps=1e-5, tie_word_embeddings=True,
                      bos_token_id=getattr(tokenizer, "bos_token_id", 1),
                      eos_token_id=getattr(tokenizer, "eos_token_id", 2))
    model = LlamaForCausalLM(cfg).eval()
    if path is not None:
        model.save_pretrained(path, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
    return model, tokenizer
