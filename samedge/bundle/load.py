"""Open a verified bundle as an extractor over the llama.cpp engine.

The extractor class is passed in (``Extractor.load`` passes itself), so that this
module, below ``samedge.extract``, never imports it back.
"""

from __future__ import annotations

from pathlib import Path

from ..data.labels import Label
from .format import MODEL, default_bundle, labels_of, verify_bundle


def open_extractor(extractor_class, bundle=None, *, threads: int | None = None, n_seq: int | None = None,
                   labels: list[Label] | None = None, n_ctx: int = 1024, **kw):
    """An ``extractor_class`` over a verified bundle (an EnsembleExtractor of two for an ensemble bundle)."""
    from ..extract.engines.llama import LlamaEngine

    path = Path(bundle) if bundle is not None else default_bundle()
    data = verify_bundle(path)
    labels = labels or labels_of(data)
    info = {"bundle": str(path), "target": data.get("target"), "quant": data["quant"]}

    # How the build's labeled examples said to read the model's answer types (select/answer_map.py).
    answer_map = (data.get("answer_map") or {}).get("map")

    def one(model_name):
        engine = LlamaEngine(path / model_name, threads=threads, n_seq=n_seq, n_ctx=n_ctx)
        return extractor_class(engine, labels, info=info, answer_map=answer_map, **kw)

    ensemble = data.get("ensemble")
    if not ensemble:
        return one(MODEL)
    from ..extract.ensemble import EnsembleExtractor
    first, second = ensemble["models"]
    return EnsembleExtractor(one(first), one(second), ensemble["combine"], info=info)
