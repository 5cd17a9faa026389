"""Sentence embeddings on CPU with onnxruntime and tokenizers only (never torch).

The shipped model is all-MiniLM-L6-v2, exported by ``converters/embedder_to_onnx.py``
with mean pooling and L2 normalisation inside the graph, int8-quantized.
Domain centroids (the mean of normalised text embeddings, re-normalised) are
what similarity selection compares; experts store theirs in their manifests,
together with :attr:`Embedder.fingerprint` so that centroids from different
embedders are never compared.

Texts longer than ``max_length`` word pieces are truncated (documented, not
silent: :meth:`Embedder.count_truncated` says how many). For a domain centroid
the first 128 word pieces of a sentence carry its domain well enough.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .converters.onnx_embedding import (DEFAULT_BATCH_SIZE, MANIFEST_FORMAT, MAX_POSITIONS,  # noqa: F401  (public here)
                                        encode_batch, load_tokenizer, make_session, run_session)

from .config import EmbedderManifest, check_manifest
from .errors import IntegrityError, UserError
from .files import read_json, verify_files

DEFAULT_MAX_LENGTH = 128
DEFAULT_CENTROID_TEXTS = 256
REQUIRED_FILES = EmbedderManifest.REQUIRED_FILES


def default_embedder_dir() -> Path:
    """``models/embedder`` beside the ``samedge`` package (the shipped int8 model)."""
    return Path(__file__).resolve().parent.parent / "models" / "embedder"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def centroid_of(embeddings: np.ndarray) -> np.ndarray:
    """Mean of (already normalised) embeddings, re-normalised to unit length."""
    if len(embeddings) == 0:
        raise UserError("cannot compute a domain centroid from zero texts")
    return normalize_rows(embeddings.astype(np.float64).mean(axis=0)).astype(np.float32)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise UserError("expected a list of texts, got a single string")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise UserError(f"text #{bad[0]} is {type(texts[bad[0]]).__name__}, not str")
    return texts


class Embedder:
    """An all-MiniLM-L6-v2 ONNX session plus its tokenizer; embeds texts into 384-d unit vectors."""

    def __init__(self, session, tokenizer, *, path: Path, manifest: dict, dim: int, max_length: int):
        self.session = session
        self.tokenizer = tokenizer
        self.path = path
        self.manifest = manifest
        self.dim = dim
        self.max_length = max_length

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, threads: int | None = None,
             max_length: int = DEFAULT_MAX_LENGTH) -> "Embedder":
        """Load an embedder folder (default: the shipped one) after checking its sha256 manifest.

        ``threads`` sets onnxruntime's intra-op thread count (None: one per core).
        """
        root = Path(path) if path is not None else default_embedder_dir()
        manifest = read_manifest(root)
        problems = verify_files(root, manifest["files"])
        if problems:
            raise IntegrityError(f"embedder {root} failed its manifest check: " + "; ".join(problems))
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        session = make_session(root / "model.onnx", threads)
        tokenizer = load_tokenizer(root / "tokenizer.json", max_length)
        return cls(session, tokenizer, path=root, manifest=manifest, dim=int(config["dim"]),
                   max_length=max_length)

    @property
    def fingerprint(self) -> str:
        """sha256 of model.onnx: store it beside every centroid computed with this embedder."""
        return self.manifest["files"]["model.onnx"]

    def embed(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """``[len(texts), 384]`` float32, each row L2-normalised; an empty list gives ``[0, 384]``."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return run_session(self.session, self.tokenizer, texts, batch_size)

    def centroid(self, texts: Sequence[str], max_texts: int = DEFAULT_CENTROID_TEXTS, seed: int = 0,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """The domain centroid of ``texts``: a unit vector of shape ``[384]``.

        With more than ``max_texts`` texts, a fixed-seed sample of ``max_texts``
        is used (files are often ordered by document, so the first ones would be
        biased); with fewer, all of them are.
        """
        texts = _check_texts(texts)
        if not texts:
            raise UserError("cannot compute a domain centroid from an empty list of texts")
        if max_texts < 1:
            raise UserError(f"max_texts must be >= 1, got {max_texts}")
        if len(texts) > max_texts:
            keep = np.sort(np.random.default_rng(seed).choice(len(texts), size=max_texts, replace=False))
            texts = [texts[i] for i in keep]
        return centroid_of(self.embed(texts, batch_size))

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` exceed ``max_length`` word pieces (and are therefore truncated)."""
        texts = _check_texts(texts)
        return sum(1 for e in self.tokenizer.encode_batch(texts) if e.overflowing)


def read_manifest(root: Path) -> dict:
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"no embedder at {root} (manifest.json missing); rebuild it with "
                        "`python -m samedge.converters.embedder_to_onnx --out models/embedder`")
    return check_manifest(EmbedderManifest, read_json(manifest_path), str(manifest_path))
