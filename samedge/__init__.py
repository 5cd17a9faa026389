"""samedge: Select and Merge domain experts for NER on the edge.

Offline is a promise: the hub clients that transformers and friends use are
switched off before anything can import them.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so that `import samedge` stays light (no llama.cpp, no torch).
    if name == "Extractor":
        from .extract import Extractor
        return Extractor
    raise AttributeError(name)
