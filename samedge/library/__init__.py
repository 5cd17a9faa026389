"""The expert library: expert folders (``experts``) and the directories that hold them (``library``).

``from samedge.library import Library`` is the public path (README "Python API").
"""

from .experts import Expert, catalog_texts, load_expert, set_centroid, write_expert
from .library import MODELS_BUDGET_BYTES, SHIPPED_RANK, Library, models_dir, shipped_library

__all__ = ["MODELS_BUDGET_BYTES", "SHIPPED_RANK", "Expert", "Library", "catalog_texts", "load_expert", "models_dir", "set_centroid", "shipped_library", "write_expert"]
