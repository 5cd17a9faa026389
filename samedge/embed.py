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

from .errors import IntegrityError, UserError
from .files import verify_files

DEFAULT_MAX_LENGTH = 128
DEFAULT_BATCH_SIZE = 32
DEFAULT_CENTROID_TEXTS = 256
MAX_POSITIONS = 512  # all-MiniLM-L6-v2's position embeddings
SORT_WINDOW = 4096  # texts tokenized and length-sorted together (bounds memory)
MANIFEST_FORMAT = "samedge-embedder/1"
REQUIRED_FILES = ("model.onnx", "tokenizer.json", "config.json")


def default_embedder_dir() -> Path:
    """``models/embedder`` beside the ``samedge`` package (the shipped int8 model)."""
    return Path(__file__).resolve().parent.parent / "models" / "embedder"


def make_session(model_path: str | os.PathLike, threads: int | None = None, spin: bool = False):
    """A CPU onnxruntime session; ``threads`` intra-op threads (None: one per core).

    ``spin=False``: idle worker threads sleep instead of busy-waiting. On a
    machine where anything else runs (a laptop, a training job) spinning
    threads fight for the cores: measured 180 vs 293 texts/s on 2 busy cores.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise UserError(f"threads must be a whole number >= 1, got {threads!r}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


def load_tokenizer(path: str | os.PathLike, max_length: int):
    """The model's WordPiece tokenizer, truncating at ``max_length`` and padding to the longest in a batch."""
    from tokenizers import Tokenizer

    if not 2 <= max_length <= MAX_POSITIONS:
        raise UserError(f"max_length must be between 2 (room for [CLS] and [SEP]) and {MAX_POSITIONS} "
                        f"(the model's positions), got {max_length}")
    tokenizer = Tokenizer.from_file(str(path))
    # The shipped tokenizer.json pads every input to a fixed 128: pad to the batch's longest instead.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


def encode_batch(tokenizer, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's feed for ``texts``: int64 ``input_ids`` and ``attention_mask``, padded to the longest."""
    encodings = tokenizer.encode_batch(list(texts))
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}


def run_session(session, tokenizer, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Embed a non-empty list of ``texts`` in batches; rows are L2-normalised float32 vectors, in input order.

    Texts are batched by length (a stable sort on word-piece count), so that a
    batch pads to a length close to its texts' own: on mixed-length data this
    is most of the speed. int8 activations are quantized per batch, so a text's
    vector can move in the 4th decimal with its neighbours; fp32 does not.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    windows = []
    for start in range(0, len(texts), SORT_WINDOW):
        window = texts[start:start + SORT_WINDOW]
        feed = encode_batch(tokenizer, window)  # padded to the window's longest, trimmed per batch below
        lengths = feed["attention_mask"].sum(axis=1)
        order = np.argsort(-lengths, kind="stable")
        rows = None
        for b in range(0, len(window), batch_size):
            idx = order[b:b + batch_size]
            width = int(lengths[idx].max())
            vectors = session.run(["embedding"], {k: v[idx, :width] for k, v in feed.items()})[0]
            if rows is None:
                rows = np.empty((len(window), vectors.shape[1]), dtype=np.float32)
            rows[idx] = vectors
        windows.append(rows)
    return np.concatenate(windows)


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
                        "`python -m converters.embedder_to_onnx --out models/embedder`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"{manifest_path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise IntegrityError(f"{manifest_path}: not a {MANIFEST_FORMAT} manifest")
    files = manifest.get("files")
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED_FILES):
        raise IntegrityError(f"{manifest_path}: must list sha256s for {', '.join(REQUIRED_FILES)}")
    return manifest
