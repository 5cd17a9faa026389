"""samedge: Select and Merge domain experts for NER on the edge.

Offline is a promise: the hub clients that transformers and friends use are
switched off before anything can import them.
"""

import os

# Forced, not defaulted: an inherited HF_HUB_OFFLINE=0 must not switch the network back on.
for _switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_switch] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .version import __version__  # noqa: E402  (after the offline switches)


def __getattr__(name):
    # Lazy, so that `import samedge` stays light (no llama.cpp, no torch).
    if name == "Extractor":
        from .extract.extractor import Extractor
        return Extractor
    raise AttributeError(name)
