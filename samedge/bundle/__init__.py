"""Bundles: the deployable result of a build, checked on every load.

- :mod:`.format`: the directory layout, bundle.json, verification, the last bundle built;
- :mod:`.load`: a verified bundle opened as an extractor.

``samedge.bundle.load_extractor(path)`` is ``Extractor.load(path)``.
"""

from __future__ import annotations

from .format import (BUNDLE_FORMAT, GGUF_MAGIC, MANIFEST, MODEL, MODEL_B, MODELFILE, default_bundle, labels_of,
                     manifest, modelfile, read_bundle, remember_bundle, verify_bundle)


def load_extractor(bundle=None, **kw):
    """An Extractor over a verified bundle, with the llama.cpp engine (see ``Extractor.load``)."""
    from ..extract.extractor import Extractor
    return Extractor.load(bundle, **kw)


__all__ = ["BUNDLE_FORMAT", "GGUF_MAGIC", "MANIFEST", "MODEL", "MODEL_B", "MODELFILE", "default_bundle", "labels_of",
           "load_extractor", "manifest", "modelfile", "read_bundle", "remember_bundle", "verify_bundle"]
