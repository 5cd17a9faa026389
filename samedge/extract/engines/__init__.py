"""Inference engines: llama.cpp (llama.py) for the edge, transformers (hf.py) for GPU hosts and training.

An engine turns prompts into answers; everything NER-specific (prompt, parse,
alignment, offsets) lives in samedge.extract.prompts and samedge.extract.extractor, so both
engines give the same results for the same model.
"""
