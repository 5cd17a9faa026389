"""Inference engines (llama.cpp for the edge, transformers for GPU hosts) and chunking.

An engine turns prompts into answers; everything NER-specific (prompt, parse,
alignment, offsets) lives in samedge.prompts and samedge.extract, so both
engines give the same results for the same model.
"""
