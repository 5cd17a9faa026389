"""NER data: the internal document, readers, writers, the shared catalog, label names.

The internal document is a plain dict::

    {"id": str, "text": str, "entities": [{"start": int, "end": int, "label": str, "text": str}]}

Offsets are characters into ``text``; ``end`` is exclusive.
"""

from .conll import read_conll
from .jsonl import read_jsonl, write_jsonl
from .labelstudio import read_labelstudio
from .writers import to_conll_lines, to_spacy, write_documents

__all__ = ["read_conll", "read_jsonl", "read_labelstudio", "write_jsonl", "to_conll_lines", "to_spacy",
           "write_documents"]
