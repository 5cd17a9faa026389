"""Target domain profiles: a name, a label set with descriptions, unlabeled sample texts.

A profile is a TOML file. The shipped ones live beside this module; users can
write their own and pass its path wherever a target name is accepted::

    name = "legal"
    description = "court rulings, contracts and statutes"
    texts = ["The Court of Appeal dismissed ...", ...]   # and/or texts_file = "texts.txt"
    dev = "dev.jsonl"            # optional: labeled JSONL/CoNLL, relative to this file

    [labels]                     # label = short description, in prompt order
    person = "parties, judges, lawyers and witnesses"
    court = "courts and tribunals"
    PER = "names of people"      # entities are labeled PER; the prompt says "person"

Selection embeds ``texts`` for the domain-similarity step and prompts experts
with ``labels``; ``dev`` (when given) lets selection score experts by F1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from ..config import TargetProfile
from ..data.decode import read_text
from ..data.labels import Label, label_conflict, user_label
from ..errors import DataError, UserError

import tomllib

SUFFIX = ".toml"
KEYS = set(TargetProfile.model_fields)
MIN_TEXTS = 1


@dataclass
class Target:
    name: str
    description: str
    labels: list[Label]
    texts: list[str] = field(default_factory=list)
    dev: Path | None = None
    source: str | None = None  # the TOML file it came from, for messages

    def summary(self) -> dict:
        return {"name": self.name, "description": self.description,
                "labels": [lab.tag for lab in self.labels], "texts": len(self.texts),
                "dev": str(self.dev) if self.dev else None}

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "labels": [lab.to_dict() for lab in self.labels], "texts": list(self.texts),
                "dev": str(self.dev) if self.dev else None}


def _shipped_dir():
    return resources.files(__name__)


def shipped_names() -> list[str]:
    return sorted(p.name[:-len(SUFFIX)] for p in _shipped_dir().iterdir()
                  if p.name.endswith(SUFFIX))


def portable_path(path: Path | None) -> str | None:
    """A path for manifests: a shipped profile's file as ``samedge/targets/NAME`` (the same on
    every machine, so bundles stay byte-identical), any other as given."""
    if path is None:
        return None
    shipped = Path(str(_shipped_dir()))
    if Path(path).parent == shipped:
        return f"samedge/targets/{Path(path).name}"
    return str(path)


def is_new_name(text) -> bool:
    """True for a plain name that is neither a shipped profile nor an existing path: what
    ``--target NAME --labels ... --texts ...`` may define."""
    return (isinstance(text, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,100}", text) is not None
            and text not in shipped_names() and not Path(text).exists())


def list_targets() -> list[Target]:
    """The shipped profiles, by name."""
    return [load_target(name) for name in shipped_names()]


def load_target(name_or_path: str | Path) -> Target:
    """A shipped profile by name, or a user's TOML file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and re.fullmatch(r"[A-Za-z0-9_-]+", text):
        if text in shipped_names():
            res = _shipped_dir() / f"{text}{SUFFIX}"
            # Files a shipped profile names (dev, texts_file) lie beside it.
            return parse_target(res.read_text(encoding="utf-8"), f"{text}{SUFFIX}",
                                default_name=text, base=Path(str(_shipped_dir())))
        if not Path(text).exists():
            raise UserError(f"unknown target {text!r}; shipped targets: {', '.join(shipped_names())} "
                            f"(or pass the path of a TOML profile)")
    path = Path(name_or_path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a TOML target profile")
    return parse_target(read_text(path), str(path), default_name=path.stem, base=path.parent)


def _toml_line(message: str) -> int:
    m = re.search(r"at line (\d+)", message)
    return int(m.group(1)) if m else 1


def parse_target(source: str, where: str, default_name: str, base: Path | None) -> Target:
    """Build a Target from TOML text; ``where`` names the file in error messages."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        raise DataError(where, _toml_line(msg), f"invalid TOML: {re.sub(r' [(]at line.*', '', msg)}") from None

    def bad(what):
        return DataError(where, 0, what)

    try:
        profile = TargetProfile.model_validate(data)
    except ValidationError as e:
        raise bad(_profile_problem(e, data)) from None
    labels = _labels(profile.labels, bad)
    texts = _texts(profile, base, bad)
    dev = None
    if profile.dev is not None:
        if not profile.dev:
            raise bad(_PROBLEMS["dev"])
        dev = Path(profile.dev) if base is None else base / profile.dev
        if not dev.is_file():
            raise bad(f"dev file not found: {dev}")
    return Target(profile.name or default_name, profile.description, labels, texts, dev, where)


# One line per key, in the order a profile is read (the first problem is the one reported).
_PROBLEMS = {
    "name": "'name' must be a short name of letters, digits, '-', '_' or '.'",
    "description": "'description' must be a string",
    "labels": "needs a [labels] table: one line per label, name = \"short description\"",
    "texts": "'texts' must be a list of strings",
    "texts_file": "'texts_file' must be a path relative to the profile",
    "dev": "'dev' must be a path to a labeled JSONL or CoNLL file",
}


def _profile_problem(error: ValidationError, data: dict) -> str:
    """The one-line message for the first problem pydantic found, in _PROBLEMS' order."""
    unknown = sorted(set(data) - KEYS)
    if unknown:
        return f"unknown keys {unknown}; expected some of {sorted(KEYS)}"
    locs = [err["loc"] for err in error.errors()]
    key = min((loc[0] for loc in locs), key=list(_PROBLEMS).index)
    if key == "name":
        return f"{_PROBLEMS['name']}, got {data.get('name')!r}"
    label = next((loc[1] for loc in locs if loc[0] == "labels" and len(loc) > 1), None)
    if key == "labels" and label is not None:
        return _no_description(label)
    return _PROBLEMS[key]


def _no_description(label: str) -> str:
    hint = f" (put {label!r} above [labels]: keys below a table belong to it)" if label in KEYS else ""
    return f"label {label!r} needs a short description string{hint}"


def _labels(raw: dict[str, str], bad) -> list[Label]:
    if not raw:
        raise bad(_PROBLEMS["labels"])
    labels = []
    for raw_name, desc in raw.items():
        if not desc.strip():
            raise bad(_no_description(raw_name))
        labels.append(user_label(raw_name, desc.strip()))
    problem = label_conflict(labels)
    if problem:
        raise bad(problem)
    return labels


def _texts(profile: TargetProfile, base, bad) -> list[str]:
    texts = [t.strip() for t in profile.texts if t.strip()]
    if profile.texts_file is not None:
        if base is None:
            raise bad(_PROBLEMS["texts_file"])
        texts += [line.strip() for line in read_text(base / profile.texts_file).splitlines() if line.strip()]
    if len(texts) < MIN_TEXTS:
        raise bad("needs sample texts: 'texts' (a list of strings) or 'texts_file' (one per line)")
    return texts
