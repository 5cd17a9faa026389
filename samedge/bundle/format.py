"""The bundle format: the deployable result of a build, checked on every load.

A bundle is a directory::

    model.gguf    the merged, quantized model
    bundle.json   target, labels, selection (scores, weights), merge method and
                  parameters, quant type, base identity, samedge version, and
                  the sha256 of every other file
    Modelfile     for Ollama users (`ollama create NAME -f Modelfile`)

bundle.json holds no timestamps, so the same build inputs give a
byte-identical bundle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import BundleManifest, check_manifest
from ..data.labels import Label
from ..errors import IntegrityError, UserError
from ..files import atomic_write_text, samedge_home, verify_files
from ..version import __version__

BUNDLE_FORMAT = BundleManifest.FORMAT
MODEL = "model.gguf"
MODEL_B = "model_b.gguf"  # the second model of an --ensemble bundle
MANIFEST = "bundle.json"
MODELFILE = "Modelfile"
GGUF_MAGIC = b"GGUF"


def modelfile(labels: list[Label]) -> str:
    """An Ollama Modelfile: greedy decoding and the ChatML stop token; the system prompt is samedge's."""
    from ..extract.prompts import SYSTEM
    return (f"FROM ./{MODEL}\n"
            "TEMPLATE \"\"\"<|im_start|>system\n{{ .System }}<|im_end|>\n<|im_start|>user\n"
            "{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n\"\"\"\n"
            f"SYSTEM \"\"\"{SYSTEM}\"\"\"\n"
            "PARAMETER temperature 0\n"
            "PARAMETER stop <|im_end|>\n"
            f"# labels: {', '.join(lab.name if lab.tag == lab.name else f'{lab.name} ({lab.tag})' for lab in labels)}\n")


def manifest(*, target: dict, labels: list[Label], base: dict, selection: dict, merge: dict, quant: str,
             files: dict) -> dict:
    return {"format": BUNDLE_FORMAT, "samedge_version": __version__, "target": target,
            "labels": [lab.to_dict() for lab in labels], "base": base, "selection": selection,
            "merge": merge, "quant": quant, "files": files}


def read_bundle(path: str | Path) -> dict:
    """bundle.json of a bundle directory, checked for shape and safe paths (files not yet hashed)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"bundle {path} does not exist (build one with `samedge build --target NAME`)")
    if not path.is_dir():
        raise UserError(f"bundle {path} is not a directory")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise IntegrityError(f"bundle {path}: {MANIFEST} is missing")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise IntegrityError(f"bundle {path}: {MANIFEST} is not valid JSON ({e})") from None
    return check_manifest(BundleManifest, data, f"bundle {path}: {MANIFEST}")


def verify_bundle(path: str | Path, base_id: str | None = None) -> dict:
    """read_bundle plus sha256 of every file, the GGUF magic, and (optionally) the base identity."""
    path = Path(path)
    data = read_bundle(path)
    problems = verify_files(path, data["files"])
    if problems:
        raise IntegrityError(f"bundle {path} failed its integrity check: {'; '.join(problems)}")
    with open(path / MODEL, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise IntegrityError(f"bundle {path}: {MODEL} is not a GGUF file")
    if base_id is not None and data["base"].get("base_id") != base_id:
        raise IntegrityError(f"bundle {path} was built for base {data['base'].get('base_id', '?')[:12]}, "
                             f"not {base_id[:12]}")
    return data


def labels_of(data: dict) -> list[Label]:
    """The bundle's labels: prompt name, description and the user's tag (bundles without tags: the name)."""
    return [Label.from_dict(d) for d in data["labels"]]


# --- which bundle --------------------------------------------------------------

def _last_bundle_file() -> Path:
    return samedge_home() / "last_bundle"


def remember_bundle(path: str | Path) -> None:
    try:
        atomic_write_text(_last_bundle_file(), str(Path(path).resolve()) + "\n")
    except OSError:
        pass  # only a convenience


def default_bundle() -> Path:
    """The most recently built bundle, else ``./bundles/legal`` (what `make demo` builds)."""
    env = os.environ.get("SAMEDGE_BUNDLE")
    if env:
        return Path(env)
    last = _last_bundle_file()
    if last.is_file():
        candidate = Path(last.read_text().strip())
        if (candidate / MANIFEST).is_file():
            return candidate
    fallback = Path("bundles") / "legal"
    if (fallback / MANIFEST).is_file():
        return fallback
    raise UserError("no bundle given and none built yet: run `samedge build --target legal` "
                    "or pass --bundle DIR")
