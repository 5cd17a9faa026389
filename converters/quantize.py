"""GGUF quantization through llama.cpp (``llama_cpp.llama_model_quantize``).

The ``gguf`` package cannot make K-quants, so the last step of a build calls
llama.cpp itself. Output is atomic: llama.cpp writes ``<dest>.<pid>.incomplete``,
which is renamed only after it returns success.

    python -m samedge.converters.quantize SRC.gguf DEST.gguf q4_k_m [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
from pathlib import Path

from samedge.errors import UserError
from samedge.files import atomic_path

# Our names -> llama.cpp file types (looked up lazily: importing llama_cpp loads the C library).
QUANT_TYPES = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
}


def normalize_qtype(qtype: str) -> str:
    """'Q4_K_M', 'q4-k-m' -> 'q4_k_m'; UserError listing the valid types otherwise."""
    name = str(qtype).strip().lower().replace("-", "_")
    if name not in QUANT_TYPES:
        raise UserError(f"unknown quantization type {qtype!r}; valid: {', '.join(QUANT_TYPES)}")
    return name


def quantize(src_gguf, dest, qtype: str, *, threads: int | None = None, verbose: bool = False) -> Path:
    """Quantize ``src_gguf`` (f32/f16 GGUF) to ``dest`` as ``qtype``; returns ``dest``.

    ``threads``: llama.cpp worker threads (default: all cores). Never leaves a
    partial ``dest``: on failure the old ``dest`` (if any) is untouched.
    ``verbose``: show llama.cpp's per-tensor log (errors are always shown).
    """
    name = normalize_qtype(qtype)
    src = Path(src_gguf)
    if not src.is_file():
        raise UserError(f"{src}: no such GGUF file")
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[name])
    params.nthread = int(threads) if threads else (os.cpu_count() or 1)
    with atomic_path(dest) as tmp, _captured_llama_log(echo=verbose) as log:
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0 or not tmp.is_file():
            reason = " ".join("".join(log).split()[-40:]) or "no log"
            raise UserError(f"llama.cpp could not quantize {src} to {name} (status {status}): {reason}")
    return Path(dest)


@contextlib.contextmanager
def _captured_llama_log(echo: bool):
    """Collect llama.cpp's log lines while quantizing (it logs every tensor).

    llama-cpp-python's own callback maps ggml's log levels wrongly (warnings
    show, errors hide), so a failure's reason would be lost; ours keeps it.
    """
    import llama_cpp
    import llama_cpp._logger as default_log

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level, text, user_data):
        line = text.decode("utf-8", errors="replace")
        lines.append(line)
        if echo:
            print(line, end="", file=sys.stderr, flush=True)

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(default_log.llama_log_callback, ctypes.c_void_p(0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedge.converters.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dest")
    parser.add_argument("qtype", help=", ".join(QUANT_TYPES))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's per-tensor log")
    args = parser.parse_args(argv)
    try:
        path = quantize(args.src, args.dest, args.qtype, threads=args.threads, verbose=args.verbose)
    except UserError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
