"""One expert folder: its manifest (``expert.json``), checked on every load, and its adapter.

An expert folder holds ``adapter_model.safetensors``, ``adapter_config.json`` and
``expert.json`` (format ``samedge-expert/1``): domain, labels with descriptions,
base identity, training record, dev F1, domain centroid, LoRA shape and the
sha256 of each file. Nothing here needs torch: tensors are read with
safetensors' numpy API.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import ExpertManifest, check_manifest
from ..data.labels import Label
from ..errors import IntegrityError, UserError
from ..files import atomic_write_json, hash_files, read_json, verify_files
from ..merge.lora import ADAPTER, ADAPTER_CONFIG, LoraConfig, lora_module, read_adapter, read_lora_config

EXPERT_FORMAT = ExpertManifest.FORMAT
MANIFEST = "expert.json"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


# --- writing ---------------------------------------------------------------------

def compute_centroid(texts: list[str], max_texts: int) -> dict | None:
    """The domain centroid of ``texts`` with the shipped ONNX embedder, tagged with its fingerprint.

    None when no embedder is installed yet; ``samedge experts centroid NAME`` fills it in later,
    and similarity selection refuses an expert without one.
    """
    from ..embed import Embedder

    try:
        embedder = Embedder.load()
    except UserError:
        return None
    vector = embedder.centroid(texts, max_texts=max_texts)
    return {"embedder": embedder.fingerprint, "texts": min(len(texts), max_texts),
            "vector": [round(float(x), 6) for x in vector]}


def write_expert(folder: Path, *, name, domain, description, labels, base, training, dev, lora,
                 centroid_texts, max_centroid_texts=256, licence: str = "") -> dict:
    """Write ``expert.json`` into ``folder`` (which already holds the adapter files).
    ``licence``: the training data's (SPDX-like), when known."""
    manifest = {
        "format": EXPERT_FORMAT, "name": name, "domain": domain, "description": description,
        **({"licence": licence} if licence else {}),
        "labels": [lab.to_dict() for lab in labels], "base": base, "lora": lora,
        "training": training, "dev": dev,
        "centroid": compute_centroid(centroid_texts, max_centroid_texts),
        "files": hash_files(folder, [ADAPTER, ADAPTER_CONFIG]),
    }
    atomic_write_json(folder / MANIFEST, manifest)
    return manifest


# --- reading and checking --------------------------------------------------------

@dataclass
class Expert:
    name: str
    path: Path
    manifest: dict

    @property
    def labels(self) -> list[Label]:
        return [Label.from_dict(d) for d in self.manifest["labels"]]

    @property
    def base_id(self) -> str:
        return self.manifest["base"]["base_id"]

    @property
    def centroid(self) -> np.ndarray:
        return np.asarray(self.manifest["centroid"]["vector"], dtype=np.float32)

    @cached_property
    def lora_config(self) -> LoraConfig:
        return read_lora_config(self.path)

    def scaling(self, module: str) -> float:
        """ΔW = scaling · B · A for ``module``: PEFT's rule (alpha/r, rsLoRA, patterns), as at runtime."""
        return self.lora_config.scaling(module)

    @property
    def dev_f1(self):
        scores = [v.get("f1") for v in self.manifest.get("dev", {}).values() if v.get("f1") is not None]
        return round(sum(scores) / len(scores), 2) if scores else None

    @property
    def size(self) -> int:
        return sum((self.path / f).stat().st_size for f in self.manifest["files"])

    def tensors(self) -> dict[str, np.ndarray]:
        """LoRA tensors as float32 numpy arrays (read with safetensors, never unpickled)."""
        return read_adapter(self.path / ADAPTER)

    def summary(self) -> dict:
        return {"name": self.name, "domain": self.manifest["domain"],
                "licence": self.manifest.get("licence", ""),
                "labels": [lab.name for lab in self.labels], "dev_f1": self.dev_f1,
                "rank": self.manifest["lora"]["r"], "size_bytes": self.size, "path": str(self.path)}


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: not an expert ({MANIFEST} missing)")
    return check_manifest(ExpertManifest, read_json(path), str(path))


def refuse_pickles(folder: Path) -> None:
    pickled = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickled:
        raise IntegrityError(f"{folder}: pickled files are refused ({', '.join(pickled)}); samedge loads safetensors only")


def load_expert(folder: str | Path, verify: bool = True) -> Expert:
    folder = Path(folder)
    refuse_pickles(folder)
    manifest = read_manifest(folder)
    if verify:
        problems = verify_files(folder, manifest["files"])
        if problems:
            raise IntegrityError(f"expert {folder.name}: " + "; ".join(problems))
    return Expert(manifest["name"], folder, manifest)


def expected_lora_shapes(base_gguf: Path) -> dict[str, tuple[int, int]]:
    """HF module path (``model.layers.N.self_attn.q_proj``) -> (out_features, in_features), from the base GGUF."""
    import gguf
    from ..converters.llama_layout import gguf_to_hf_name

    shapes = {}
    for t in gguf.GGUFReader(base_gguf).tensors:
        if len(t.shape) != 2:
            continue
        try:
            hf = gguf_to_hf_name(t.name)
        except KeyError:
            continue
        in_features, out_features = (int(x) for x in t.shape)  # GGUF lists ne0 (the input dim) first
        shapes[hf.rsplit(".", 1)[0]] = (out_features, in_features)
    return shapes


def validate_adapter(expert: Expert, base_id: str, base_gguf: Path) -> None:
    """Refuse an expert for another base, with tensors the base lacks, wrong shapes, or NaN/Inf."""
    if expert.base_id != base_id:
        raise IntegrityError(f"expert {expert.name} was trained on base {expert.base_id[:12]}, "
                             f"not on this library's base {base_id[:12]}")
    shapes = expected_lora_shapes(base_gguf)
    tensors = expert.tensors()
    if not tensors:
        raise IntegrityError(f"expert {expert.name}: the adapter holds no tensors")
    for key, value in tensors.items():
        module, which = lora_module(key)
        if module not in shapes:
            raise IntegrityError(f"expert {expert.name}: tensor {key} adapts {module}, which the base does not have")
        out_f, in_f = shapes[module]
        rank = expert.lora_config.rank(module)
        want = (rank, in_f) if which == "A" else (out_f, rank)
        if tuple(value.shape) != want:
            raise IntegrityError(f"expert {expert.name}: {key} has shape {tuple(value.shape)}, expected {want}")
        if not np.isfinite(value).all():
            raise IntegrityError(f"expert {expert.name}: {key} contains NaN or Inf")


def set_centroid(expert: Expert, texts: list[str], max_texts: int = 256) -> Expert:
    """Compute and store an expert's domain centroid (for experts trained before an embedder existed)."""
    centroid = compute_centroid(texts, max_texts)
    if centroid is None:
        raise UserError("no embedder installed (models/embedder); cannot compute a centroid")
    atomic_write_json(expert.path / MANIFEST, dict(expert.manifest, centroid=centroid))
    return load_expert(expert.path)


def catalog_texts(domain: str) -> list[str]:
    """Training texts of a catalog domain (or of each domain in a unified expert's comma list)."""
    from ..data.catalog import training_splits

    return [d["text"] for name in domain.split(",") for d in training_splits(name)[0]]
