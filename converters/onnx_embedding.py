"""The ONNX embedder's runtime format: a CPU session, the tokenizer, batched runs.

Shared by the exporter (``embedder_to_onnx`` checks what it wrote with exactly the
code that will run it) and by ``samedge.embed`` at runtime; onnxruntime and
tokenizers only, never torch.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from samedge.errors import UserError

DEFAULT_BATCH_SIZE = 32
MAX_POSITIONS = 512  # all-MiniLM-L6-v2's position embeddings
SORT_WINDOW = 4096  # texts tokenized and length-sorted together (bounds memory)
MANIFEST_FORMAT = "samedge-embedder/1"


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
