"""samedge's settings as pydantic models: each build default is written once, here.

:class:`BuildConfig` is what ``samedge build`` builds from. Its defaults are the CLI's
(``samedge build`` and ``samedge select`` read them with :func:`build_default`) and selection's
(``samedge.select`` reads k, weighting, temperature and sample here); bundle.json records the
whole config under ``"build"``, and ``samedge build --config BUNDLE/bundle.json`` rebuilds from
it, byte for byte. :class:`TrainConfig` types the training hyperparameters (their values are in
samedge/train/train_defaults.toml). ``parse_overrides`` reads the ``key=value`` options
(``--param``, ``--set``).

Why each value: k, selection, weighting and the merge method were chosen on dev data
(BENCHMARKS.md "Build defaults", ``benchmarks/accuracy.py tune``); the alignment threshold too
(BENCHMARKS.md "Label alignment").
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import IntegrityError, UserError
from .files import safe_relpath

AUTO_K = "auto"
# How experts are scored by agreement without labeled target instances (samedge/select/performance.py).
AGREEMENT_MODES = ("vote", "vote_all", "vote_coverage", "pairwise")


class BuildConfig(BaseModel):
    """Everything a bundle's content depends on; JSON in and out."""

    model_config = ConfigDict(extra="forbid")

    target: str | None = None              # a shipped profile, a TOML path, or a new target's name
    texts: list[str] | None = None         # files of unlabeled target texts (replace the profile's)
    labels: list[dict] | None = None       # {"name", "description", "tag"}, as bundle.json lists labels
    dev: str | None = None                 # labeled target documents
    # k=3 and TIES (density 0.5) measured best on dev against k=1, k=auto, linear, DARE-TIES and other
    # densities (BENCHMARKS.md "Build defaults": none better by a paired bootstrap interval).
    k: int | Literal["auto"] = 3
    # Both SaM criteria: the similarity shortlist scored on sampled target instances (F1 on the
    # target's dev set when it has one, else agreement between the experts). Similarity alone was the
    # weakest configuration measured (BENCHMARKS.md, "Build defaults" and protocol P).
    selection: str = "combined"
    method: str = "ties"
    method_params: dict = {}
    weighting: str = "uniform"             # see samedge.select.weighting for the measurement
    temperature: float = 0.05
    quant: str = "q8_0"
    library: str | None = None
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    sample: int = 32                       # target sentences scored per candidate (performance selection)
    # Without labeled target instances, how experts are scored by agreement (select/performance.py).
    # vote measured within 0.8 F1 of the best possible pick on dev over the 16 P and N targets;
    # vote_all 1.4 below it, pairwise +0.2 (BENCHMARKS.md "Selection criteria").
    agreement: Literal[AGREEMENT_MODES] = "vote"
    seed: int = 0
    ensemble: Literal["union", "vote"] | None = None   # two models, one per selection criterion
    align_threshold: float | None = 0.6    # label alignment (None: off), see select/label_alignment.py
    # With labeled target examples, learn how to read the merged model's answer types from them
    # (select/answer_map.py); measured on dev: BENCHMARKS.md "Answer map".
    answer_map: bool = True


class TrainConfig(BaseModel):
    """Training hyperparameters: their types here, their values (and why) in
    samedge/train/train_defaults.toml; a user TOML file and ``--set key=value`` override them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    r: int
    alpha: int
    dropout: float
    target_modules: list[str]
    lr: float
    warmup_steps: int
    weight_decay: float
    max_steps: int
    max_epochs: int
    batch_size: int
    max_length: int
    max_empty_share: float = Field(gt=0, le=1)  # share of entity-less documents kept (1: all)
    seed: int
    max_negatives: int
    rename_prob: float
    subset_prob: float
    checkpoint_every: int
    dev_sentences: int
    dev_answer_tokens: int
    centroid_texts: int
    save_dtype: str
    precision: str
    gradient_checkpointing: bool


def train_config(values: dict) -> dict:
    """``values`` checked as a :class:`TrainConfig` (unknown keys and wrong types refused), as a dict."""
    unknown = set(values) - set(TrainConfig.model_fields)
    if unknown:
        raise UserError(f"unknown training option(s): {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(TrainConfig.model_fields))}")
    try:
        return TrainConfig.model_validate(values).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        key = err["loc"][0]
        if key not in values:
            raise UserError(f"training option {key} is missing") from None
        kind = TrainConfig.model_fields[key].annotation
        wanted = getattr(kind, "__name__", kind)
        if err["type"] in ("greater_than", "less_than_equal"):  # a bound, not a type: pydantic's words
            wanted = f"a {wanted} {err['msg'].removeprefix('Input should be ')}"
        raise UserError(f"training option {key} must be {wanted}, got {values[key]!r}") from None


class Manifest(BaseModel):
    """What every samedge manifest holds: its format and the sha256 of each file it lists. Other keys
    are allowed and kept: a manifest is checked here, then used as the dict it was read as."""

    model_config = ConfigDict(extra="allow")
    FORMAT: ClassVar[str] = ""
    REQUIRED_FILES: ClassVar[tuple[str, ...]] = ()

    format: str
    files: dict[str, str]


class ExpertManifest(Manifest):
    """expert.json of an expert folder (samedge.library.experts)."""
    FORMAT = "samedge-expert/1"

    name: str
    domain: str
    labels: list
    base: dict
    lora: dict
    centroid: dict | None      # None until `samedge experts centroid` fills it in


class BundleManifest(Manifest):
    """bundle.json of a bundle (samedge.bundle.format)."""
    FORMAT = "samedge-bundle/1"
    REQUIRED_FILES = ("model.gguf",)

    labels: list
    base: dict
    quant: str
    answer_map: "AnswerMapRecord | None" = None   # only when the build had labeled examples


class AnswerMapRecord(BaseModel):
    """bundle.json's ``answer_map`` (samedge.select.answer_map): how answer types are read."""

    model_config = ConfigDict(extra="allow")

    map: dict[str, str | None]


BundleManifest.model_rebuild()


class EmbedderManifest(Manifest):
    """manifest.json of the ONNX sentence embedder (samedge.embed; written by converters.embedder_to_onnx)."""
    FORMAT = "samedge-embedder/1"
    REQUIRED_FILES = ("model.onnx", "tokenizer.json", "config.json")


class BaseManifest(Manifest):
    """manifest.json of a provisioned base model (samedge.base)."""
    FORMAT = "samedge-base/1"

    name: str
    base_id: str


def check_manifest(model: type[Manifest], data, where: str) -> dict:
    """``data`` (a parsed JSON manifest) checked against ``model``: the format, the keys and their
    types, the files it must list and safe relative file paths. Returns ``data``; an IntegrityError
    that starts with ``where`` otherwise."""
    if not isinstance(data, dict) or data.get("format") != model.FORMAT:
        raise IntegrityError(f"{where} is not a {model.FORMAT} manifest")
    try:
        model.model_validate(data)
    except ValidationError as e:
        missing = [str(err["loc"][0]) for err in e.errors() if err["type"] == "missing"]
        if missing:
            raise IntegrityError(f"{where} lacks {', '.join(missing)}") from None
        err = e.errors()[0]
        raise IntegrityError(f"{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    unlisted = [name for name in model.REQUIRED_FILES if name not in data["files"]]
    if unlisted:
        raise IntegrityError(f"{where} does not list {', '.join(unlisted)}")
    for name in data["files"]:
        try:
            safe_relpath(name)  # refuses '..' and absolute paths before anything is opened
        except IntegrityError as e:
            raise IntegrityError(f"{where}: {e}") from None
    return data


class TargetProfile(BaseModel):
    """A target profile's TOML (samedge/targets/*.toml, or a user's file): its keys and their types.
    What types cannot say (label names that collide, files that exist) samedge.targets checks."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")   # default: the file's stem
    description: str = ""
    labels: dict[str, str]                 # label = short description, in prompt order
    texts: list[str] = []
    texts_file: str | None = None          # one text per line, relative to the profile
    dev: str | None = None                 # labeled JSONL/CoNLL, relative to the profile


def build_default(field: str):
    """The default of one :class:`BuildConfig` field (for CLI options and library signatures)."""
    return BuildConfig.model_fields[field].get_default(call_default_factory=True)


def read_build_config(path: str | Path) -> BuildConfig:
    """The build config of a bundle.json (its ``"build"`` record) or of a JSON file holding one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read a build config ({e})") from None
    if isinstance(data, dict) and "format" in data:  # a bundle.json
        if "build" not in data:
            raise UserError(f"{path}: this bundle records no build config (built before samedge recorded one)")
        data = data["build"]
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}" for err in e.errors())
        raise UserError(f"{path}: not a build config ({problems})") from None


def parse_overrides(items) -> dict:
    """``["lr=2e-4", "r=16"]`` -> typed values (TOML syntax for each value)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out
