"""The expert library: directories of expert folders (see experts.py).

Libraries are directories: the shipped one (``models/experts``) and any user
directory (``--library DIR`` or ``$SAMEDGE_LIBRARY``). A user library shadows the
shipped one for experts of the same name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import UserError
from ..files import atomic_dir, atomic_write_json, check_name, safe_relpath, verify_files
from .experts import MANIFEST, Expert, load_expert, read_manifest, refuse_pickles, validate_adapter


# The shipped library's storage policy (BENCHMARKS.md "Library budget", measured on dev): every
# expert is trained at train_defaults.toml's r=8 and stored at rank 6 by SVD truncation of its delta
# (-0.6 mean dev F1), so that 20 experts and the embedder fit in models/'s 100 MB.
SHIPPED_RANK = 6
MODELS_BUDGET_BYTES = 100_000_000


def models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models"


def shipped_library() -> Path:
    return models_dir() / "experts"


def library_dirs(library: str | Path | None = None, include_shipped: bool = True) -> list[Path]:
    dirs = []
    user = library or os.environ.get("SAMEDGE_LIBRARY")
    if user:
        dirs.append(Path(user))
    if include_shipped:
        dirs.append(shipped_library())
    return dirs


class Library:
    """Experts found in one or more directories; the first directory is the one written to."""

    def __init__(self, dirs: list[Path]):
        self.dirs = [Path(d) for d in dirs]

    @classmethod
    def open(cls, library: str | Path | None = None, include_shipped: bool = True) -> "Library":
        return cls(library_dirs(library, include_shipped))

    @property
    def writable(self) -> Path:
        return self.dirs[0]

    def names(self) -> list[str]:
        seen = []
        for d in self.dirs:
            if d.is_dir():
                for p in sorted(d.iterdir()):
                    if p.is_dir() and not p.name.startswith(".") and p.name not in seen and (p / MANIFEST).exists():
                        seen.append(p.name)
        return sorted(seen)

    def path(self, name: str) -> Path:
        check_name(name, "expert name")
        for d in self.dirs:
            if (d / name / MANIFEST).exists():
                return d / name
        raise UserError(f"no expert named {name!r} in {', '.join(map(str, self.dirs))}")

    def get(self, name: str, verify: bool = True) -> Expert:
        return load_expert(self.path(name), verify=verify)

    def experts(self, verify: bool = True, exclude=()) -> list[Expert]:
        return [self.get(n, verify=verify) for n in self.names() if n not in set(exclude)]

    def add(self, src: str | Path, name: str | None = None, force: bool = False) -> Expert:
        """Copy an expert folder in after checking it against the default base; atomic."""
        from ..base import packaged_gguf, resolve_source

        src = Path(src)
        if not src.is_dir():
            raise UserError(f"{src}: not a directory")
        expert = load_expert(src, verify=True)
        name = check_name(name or expert.name, "expert name")
        validate_adapter(expert, resolve_source().base_id, packaged_gguf())
        dest = self.writable / name
        with atomic_dir(dest, overwrite=force) as tmp:
            for rel in list(expert.manifest["files"]) + [MANIFEST]:
                shutil.copyfile(src / safe_relpath(rel), tmp / rel)
            if name != expert.name:
                manifest = dict(expert.manifest, name=name)
                atomic_write_json(tmp / MANIFEST, manifest)
        return load_expert(dest)

    def remove(self, name: str) -> Path:
        """Take an expert out of the writable library: renamed away first, so it vanishes at once."""
        path = self.path(name)
        if path.parent != self.writable:
            raise UserError(f"expert {name!r} lives in {path.parent}, not in the writable library {self.writable}")
        trash = path.with_name(f".{name}.{os.getpid()}.removed")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return path

    def verify(self) -> dict[str, list[str]]:
        """Re-hash every expert's files; name -> problems (empty lists when all is well)."""
        out = {}
        for name in self.names():
            path = self.path(name)
            try:
                manifest = read_manifest(path)
                refuse_pickles(path)
                out[name] = verify_files(path, manifest["files"])
            except UserError as e:
                out[name] = [str(e)]
        return out
