"""Embedding throughput (texts/s): ONNX int8 (shipped) vs ONNX fp32 vs torch, same texts, one run.

    nice -n 10 python benchmarks/embed_throughput.py            # writes its section of BENCHMARKS.md
    python benchmarks/embed_throughput.py --no-write --rounds 3

Texts: the first 34 test sentences of each of the 15 shared domains (510).
Every engine embeds them all, batch 32, max length 128, on ``--threads``
threads (default 2), with length-sorted batching (sentence-transformers sorts
internally; samedge's runtime does too), so the comparison is like for like.
Rounds are interleaved (int8, fp32, torch, int8, ...) and the median round
counts, so that drifting background load hits every engine alike. Idle
threads sleep rather than spin in both runtimes (onnxruntime's
``allow_spinning=0``, samedge's default; ``OMP_WAIT_POLICY=PASSIVE`` for
torch): on a shared machine spinning costs each of them 1.6-2.7x, and the
comparison should not hinge on which one spins.

torch is sentence-transformers when installed, else transformers with mean
pooling. The fp32 ONNX model is exported on the fly (about a second) with
the converter's own exporter; it is what the int8 model was quantized from.
Needs the ``train`` and ``embedder`` extras (torch, transformers, onnx).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

# Before torch is imported: its OpenMP threads then sleep when idle, like onnxruntime's (see above).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_model  # noqa: E402

BENCHMARKS_MD = REPO / "BENCHMARKS.md"
START, END = "<!-- embed_throughput:start -->", "<!-- embed_throughput:end -->"
PER_DOMAIN = 34
BATCH = 32
MAX_LENGTH = 128
TARGET_RATIO = 3.0
COMMAND = "nice -n 10 python benchmarks/embed_throughput.py"


def benchmark_texts() -> list[str]:
    from samedge.data.catalog import DOMAINS, load_split

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [d["text"] for name in sorted(DOMAINS) for d in load_split(name, "test")[:PER_DOMAIN]]


def onnx_engine(model_path: Path, tokenizer_path: Path, threads: int):
    from samedge.embed import load_tokenizer, make_session, run_session

    session = make_session(model_path, threads)
    tokenizer = load_tokenizer(tokenizer_path, MAX_LENGTH)
    return lambda texts: run_session(session, tokenizer, texts, BATCH)


def torch_engine(model_dir: Path, threads: int):
    import torch

    torch.set_num_threads(threads)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        from samedge.converters.embedder_to_onnx import _transformers_embed
        return (lambda texts: _transformers_embed(model_dir, texts, BATCH)), "transformers + mean pooling"
    import importlib.metadata

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_LENGTH
    name = f"sentence-transformers {importlib.metadata.version('sentence-transformers')}"
    return (lambda texts: model.encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                       convert_to_numpy=True)), name


def measure(engines: dict, texts: list[str], rounds: int) -> tuple[dict, dict]:
    """Median seconds per full pass for each engine, plus each engine's vectors (from the warm-up)."""
    vectors = {name: np.asarray(fn(texts)) for name, fn in engines.items()}  # warm-up
    seconds = {name: [] for name in engines}
    for _ in range(rounds):
        for name, fn in engines.items():
            start = time.perf_counter()
            fn(texts)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}, vectors


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def section(results: dict, texts: int, threads: int, rounds: int, torch_name: str, sizes: dict,
            cosines: dict, load: tuple) -> str:
    torch_rate = results["torch"]
    labels = {"onnx_int8": "ONNX int8 (shipped `models/embedder`)", "onnx_fp32": "ONNX fp32",
              "torch": f"torch ({torch_name})"}
    rows = ["| engine | texts/s | x torch | model size | min cosine vs torch |", "|---|---|---|---|---|"]
    for name in ("onnx_int8", "onnx_fp32", "torch"):
        rows.append(f"| {labels[name]} | {results[name]:.0f} | {results[name] / torch_rate:.2f} | "
                    f"{sizes[name]} | {cosines[name]} |")
    verdict = "met" if results["onnx_int8"] / torch_rate >= TARGET_RATIO else "NOT met"
    return "\n".join([
        START,
        "## Embedding throughput",
        "",
        f"{texts} real sentences (the first {PER_DOMAIN} test sentences of each shared domain), batch {BATCH}, "
        f"max length {MAX_LENGTH}, {threads} threads, length-sorted batches for every engine, idle threads "
        f"sleep (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, onnxruntime allow_spinning=0); "
        f"median of {rounds} interleaved rounds.",
        "",
        *rows,
        "",
        f"- int8 / torch = **{results['onnx_int8'] / torch_rate:.2f}x** (target >= {TARGET_RATIO:g}x: {verdict}); "
        f"int8 / fp32 = {results['onnx_int8'] / results['onnx_fp32']:.2f}x; fp32 / torch = "
        f"{results['onnx_fp32'] / torch_rate:.2f}x.",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; load average at start {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min; other jobs were running, so absolute rates are low and ratios are what to read).",
        f"- Measured {date.today().isoformat()} with `{COMMAND}`; Python {platform.python_version()}.",
        END,
    ])


def write_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace this benchmark's marked section of BENCHMARKS.md (or append it); leaves the rest alone."""
    from samedge.files import atomic_write_text

    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1]
        updated = before + text + after
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    atomic_write_text(path, updated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    from samedge.converters.embedder_to_onnx import export_fp32, source_model_dir
    from samedge.embed import default_embedder_dir

    load = os.getloadavg()
    texts = benchmark_texts()
    shipped = default_embedder_dir()
    model_dir = source_model_dir()
    with tempfile.TemporaryDirectory(prefix="samedge-bench-") as work:
        fp32 = Path(work) / "model.fp32.onnx"
        export_fp32(model_dir, fp32)
        torch_fn, torch_name = torch_engine(model_dir, args.threads)
        engines = {"onnx_int8": onnx_engine(shipped / "model.onnx", shipped / "tokenizer.json", args.threads),
                   "onnx_fp32": onnx_engine(fp32, shipped / "tokenizer.json", args.threads),
                   "torch": torch_fn}
        seconds, vectors = measure(engines, texts, args.rounds)
        sizes = {"onnx_int8": f"{(shipped / 'model.onnx').stat().st_size / 1e6:.1f} MB",
                 "onnx_fp32": f"{fp32.stat().st_size / 1e6:.1f} MB",
                 "torch": f"{(model_dir / 'model.safetensors').stat().st_size / 1e6:.1f} MB"}
    rates = {name: len(texts) / s for name, s in seconds.items()}
    cosines = {name: f"{min_cosine(vectors[name], vectors['torch']):.4f}" for name in engines}
    text = section(rates, len(texts), args.threads, args.rounds, torch_name, sizes, cosines, load)
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"updated {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
