"""Merging experts: a registry of pure methods over exact deltas, and three outputs.

- :func:`merge_into_gguf`: numpy over the GGUF f16 base (laptop, no torch);
- :func:`merge_into_hf`: torch over the HF base (GPU hosts);
- :func:`cat_adapter` / :func:`svd_adapter`: a LoRA that keeps the base shared.
"""

# The built-in methods register themselves; importing any module of this package runs this first.
from . import methods  # noqa: F401
from .adapter import cat_adapter, svd_adapter
from .gguf_merge import merge_into_gguf, merged_deltas
from .hf_merge import merge_into_hf
from .registry import METHODS, get_method, method_names, register

__all__ = ["merge_into_gguf", "merged_deltas", "merge_into_hf", "cat_adapter", "svd_adapter",
           "METHODS", "get_method", "method_names", "register"]
