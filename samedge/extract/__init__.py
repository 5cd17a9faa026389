"""Extraction: text in, entities with exact character offsets out.

- ``inputs``: files and JSONL read into documents (decoding errors reported, never skipped);
- ``chunking``: documents cut into sentence-aligned chunks that fit the prompt;
- ``prompts``: the prompt, and the answer parsed and aligned back onto the text;
- ``extractor``: ``Extractor``, which drives an engine over the chunks in batches;
- ``engines``: llama.cpp (``engines.llama``) and transformers (``engines.hf``);
- ``ensemble``: two extractors' entities combined (union or vote);
- ``records``: what extract, extract-corpus and serve share about records and batches;
- ``api``: ``run_extract`` (the CLI's ``samedge extract``) and ``extract_records``.

Nothing here imports torch or llama.cpp until an engine is built.
"""

from .api import extract_records, run_extract
from .extractor import Extractor

__all__ = ["Extractor", "extract_records", "run_extract"]
