"""Format converters written with the ``gguf`` package and numpy.

No code here is copied from llama.cpp; the GGUF layout is documented in the
``gguf`` package and the llama.cpp repository's docs.
"""
