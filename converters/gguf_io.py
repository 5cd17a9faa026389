"""Shared GGUF/safetensors plumbing for the converters and the numpy merge path.

- :func:`read_safetensors`: memory-mapped numpy views of HF weights (bf16 widened
  lazily), never pickle.
- :func:`write_gguf`: a streaming, atomic GGUF writer. Tensor headers are planned
  first and values produced one at a time, so peak memory is one tensor, not a model.
- :func:`write_gguf_like`: an existing GGUF's metadata and tensors, with some
  tensors replaced and everything re-encoded at ``out_type``. The merge code
  uses it to write "base.gguf + deltas".

Layout convention: a tensor's numpy shape is the GGUF dims reversed, i.e.
``[out, in]`` for a weight, exactly as HF stores it; q/k rows are in
llama.cpp's interleaved order (see ``llama_layout.permute_qk``).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Union

import numpy as np

from samedge.files import atomic_path

OUT_TYPES = ("f32", "f16", "q8_0")

# A tensor value, or a function computing it from the source value (lets a
# merge stream one tensor at a time instead of holding a whole model).
TensorValue = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


# --- safetensors (numpy only) -------------------------------------------------

_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
                       "U8": np.uint8, "BOOL": np.bool_}


class BF16Array:
    """A memory-mapped bf16 tensor, widened to f32 only when read (``np.asarray``)."""

    def __init__(self, raw: np.ndarray):
        self.raw = raw  # uint16 view
        self.shape = raw.shape
        self.ndim = raw.ndim

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = (self.raw.astype(np.uint32) << 16).view(np.float32)  # bf16 is the top half of an f32
        return values if dtype is None else values.astype(dtype, copy=False)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray | BF16Array]:
    """All tensors of one ``.safetensors`` file, memory-mapped; bf16 comes as :class:`BF16Array`.

    The format is an 8-byte header length, a JSON header and a flat buffer, so
    numpy reads it without torch (whose numpy bridge has no bf16).
    """
    path = Path(path)
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path.name}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        array = data[start:end].view(dtype).reshape(info["shape"])
        tensors[name] = BF16Array(array) if info["dtype"] == "BF16" else array
    return tensors


def read_safetensors_dir(folder: str | os.PathLike) -> dict[str, np.ndarray | BF16Array]:
    """Every ``*.safetensors`` shard of an HF folder; refuses pickled weights."""
    folder = Path(folder)
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        pickled = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        hint = f" (found pickled {pickled}: convert them to safetensors yourself; they are never loaded)" if pickled else ""
        raise FileNotFoundError(f"{folder}: no *.safetensors weights{hint}")
    tensors: dict[str, np.ndarray] = {}
    for shard in shards:
        for name, array in read_safetensors(shard).items():
            if name in tensors:
                raise ValueError(f"{folder}: tensor {name} appears in two shards")
            tensors[name] = array
    return tensors


# --- encoding -----------------------------------------------------------------

def ggml_type_for(shape: tuple[int, ...], out_type: str):
    """The GGML type a tensor is stored with: 1-D tensors (norms, biases) stay f32."""
    import gguf

    if out_type not in OUT_TYPES:
        raise ValueError(f"unknown out_type {out_type!r}; valid: {', '.join(OUT_TYPES)}")
    T = gguf.GGMLQuantizationType
    if len(shape) < 2 or out_type == "f32":
        return T.F32
    if out_type == "q8_0" and shape[-1] % 32 == 0:
        return T.Q8_0
    return T.F16  # f16, or q8_0 rows that do not split into 32-blocks


def encode(values: np.ndarray, ggml_type) -> np.ndarray:
    """Values (any float dtype) -> the array written for ``ggml_type``."""
    import gguf
    from gguf.quants import quantize

    T = gguf.GGMLQuantizationType
    if ggml_type == T.F32:
        return np.ascontiguousarray(values, dtype=np.float32)
    if ggml_type == T.F16:
        return np.ascontiguousarray(values, dtype=np.float16)
    return quantize(np.asarray(values, dtype=np.float32), ggml_type)


def file_type_for(out_type: str) -> int:
    import gguf

    F = gguf.LlamaFileType
    return {"f32": F.ALL_F32, "f16": F.MOSTLY_F16, "q8_0": F.MOSTLY_Q8_0}[out_type]


# --- writing ------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedTensor:
    """A tensor to write: its name, numpy shape, GGML type and a producer of its values."""
    name: str
    shape: tuple[int, ...]
    ggml_type: object
    produce: Callable[[], np.ndarray]  # returns the encoded array (see :func:`encode`)


def planned(name: str, shape, out_type: str, produce_values: Callable[[], np.ndarray]) -> PlannedTensor:
    """Plan a float tensor: ``produce_values`` returns float values, encoded at write time."""
    shape = tuple(int(x) for x in shape)
    ggml_type = ggml_type_for(shape, out_type)

    def produce() -> np.ndarray:
        values = produce_values()
        if tuple(values.shape) != shape:
            raise ValueError(f"tensor {name}: shape {tuple(values.shape)} != planned {shape}")
        return encode(values, ggml_type)
    return PlannedTensor(name, shape, ggml_type, produce)


def _encoded_nbytes(shape: tuple[int, ...], ggml_type) -> int:
    from gguf.constants import GGML_QUANT_SIZES

    block, type_size = GGML_QUANT_SIZES[ggml_type]
    return int(np.prod(shape[:-1], dtype=np.int64)) * (shape[-1] // block) * type_size


def write_gguf(dest: str | os.PathLike, arch: str, add_metadata: Callable[[object], None],
               tensors: Iterable[PlannedTensor], alignment: int | None = None) -> Path:
    """Write a GGUF atomically, one tensor in memory at a time.

    ``add_metadata(writer)`` adds the key/value fields. Output is a pure
    function of the inputs (no timestamps), so equal inputs give equal bytes.
    """
    import gguf

    dest = Path(dest)
    plan = list(tensors)
    names = [t.name for t in plan]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names in GGUF plan")
    with atomic_path(dest) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        if alignment is not None and alignment != gguf.GGUF_DEFAULT_ALIGNMENT:
            writer.add_custom_alignment(int(alignment))
        try:
            add_metadata(writer)
            for t in plan:
                nbytes = _encoded_nbytes(t.shape, t.ggml_type)
                writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), nbytes, raw_dtype=t.ggml_type)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for t in plan:
                data = t.produce()
                if data.nbytes != _encoded_nbytes(t.shape, t.ggml_type):
                    raise ValueError(f"tensor {t.name}: encoded size {data.nbytes} does not match its header")
                writer.write_tensor_data(data)
        finally:
            writer.close()
    return dest


# --- reading GGUF -------------------------------------------------------------

def open_gguf(source):
    """A GGUFReader from a path, or the reader itself."""
    import gguf

    return source if isinstance(source, gguf.GGUFReader) else gguf.GGUFReader(Path(source))


def tensor_shape(t) -> tuple[int, ...]:
    """Numpy shape of a reader tensor (GGUF lists ne0 first)."""
    return tuple(int(x) for x in reversed(t.shape))


def tensor_values(t) -> np.ndarray:
    """A reader tensor as float32 in numpy layout (dequantized if needed)."""
    from gguf.quants import dequantize

    return np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(tensor_shape(t))


def read_tensor(source, name: str) -> np.ndarray:
    """One tensor of a GGUF as float32, numpy layout (q/k rows in GGUF order)."""
    reader = open_gguf(source)
    for t in reader.tensors:
        if t.name == name:
            return tensor_values(t)
    raise KeyError(f"no tensor {name!r} in GGUF")


def field_value(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


# Fields the writer sets itself, or that describe the tensors being rewritten.
_WRITER_FIELDS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture",
                  "general.file_type", "general.alignment"}


def copy_fields(reader, writer, overrides: Callable[[object], None] | None = None,
                skip=frozenset()) -> None:
    """Copy every key/value field of a GGUFReader to a GGUFWriter, keeping its exact type and order.

    ``overrides(writer)`` adds fields that replace copied ones; it runs where
    ``general.file_type`` stood, so a plain copy keeps the source's key order.
    """
    import gguf

    overridden = False
    for name, field in reader.fields.items():
        if name == "general.file_type" and overrides is not None:
            overrides(writer)
            overridden = True
        if name in _WRITER_FIELDS or name in skip:
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), vtype)
    if overrides is not None and not overridden:
        overrides(writer)


def write_gguf_like(base, dest: str | os.PathLike, replace: Mapping[str, TensorValue] | None = None,
                    out_type: str = "f16", *, extra_fields: Callable[[object], None] | None = None) -> Path:
    """Write ``dest`` with ``base``'s metadata and tensors, some replaced, all at ``out_type``.

    ``base``: a GGUF path or GGUFReader. ``replace`` maps tensor names to new
    values in numpy layout (same shape as the base's, q/k rows in GGUF order),
    or to ``f(base_values_f32) -> new_values`` to stream. Unreplaced tensors
    already stored at the target type are copied byte for byte. 1-D tensors
    are always f32. Unknown names, shape changes and NaN/Inf raise ValueError.
    Deterministic: the same inputs give a byte-identical file.
    """
    reader = open_gguf(base)
    replace = dict(replace or {})
    by_name = {t.name: t for t in reader.tensors}
    unknown = sorted(set(replace) - set(by_name))
    if unknown:
        raise ValueError(f"replacement tensors not in the base GGUF: {unknown[:5]}")
    arch = field_value(reader, "general.architecture")

    def plan_one(t) -> PlannedTensor:
        shape = tensor_shape(t)
        ggml_type = ggml_type_for(shape, out_type)
        if t.name not in replace:
            if t.tensor_type == ggml_type:  # already right: copy the raw bytes
                return PlannedTensor(t.name, shape, ggml_type, lambda t=t: np.ascontiguousarray(t.data))
            return planned(t.name, shape, out_type, lambda t=t: tensor_values(t))

        def new_values(t=t, value=replace[t.name]) -> np.ndarray:
            values = value(tensor_values(t)) if callable(value) else value
            values = np.asarray(values)
            if tuple(values.shape) != shape:
                raise ValueError(f"replacement for {t.name}: shape {tuple(values.shape)} != base {shape}")
            if not np.isfinite(values).all():
                raise ValueError(f"replacement for {t.name} holds NaN or Inf")
            return values
        return planned(t.name, shape, out_type, new_values)

    def add_metadata(writer) -> None:
        copy_fields(reader, writer, overrides=lambda w: w.add_file_type(file_type_for(out_type)))
        if extra_fields is not None:
            extra_fields(writer)

    return write_gguf(dest, arch, add_metadata, [plan_one(t) for t in reader.tensors],
                      alignment=reader.alignment)
