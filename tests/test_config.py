"""samedge.config: the build config (one set of defaults, recorded in bundle.json, and
``samedge build --config bundle.json`` rebuilds the same bundle byte for byte: real, marked),
the training config, and the manifest models the four manifest readers check through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samedge.build import BuildOptions
from samedge.config import BuildConfig, build_default, read_build_config
from samedge.data.labels import parse_label_spec
from samedge.errors import UserError
from tests.bundle_fixtures import cli_env, run_cli  # noqa: F401

# The defaults as documented (README, BENCHMARKS.md "Build defaults"), written out independently.
DOCUMENTED = {"k": 3, "selection": "combined", "method": "ties", "weighting": "uniform", "temperature": 0.05,
              "quant": "q8_0", "sample": 32, "seed": 0, "align_threshold": 0.6, "ensemble": None,
              "agreement": "vote"}
# `samedge build` option -> BuildConfig field
OPTION_FIELDS = {"k": "k", "selection": "selection", "method": "method", "weighting": "weighting",
                 "temperature": "temperature", "quant": "quant", "sample": "sample", "seed": "seed",
                 "align_threshold": "align_threshold", "agreement": "agreement"}


def test_the_defaults_are_the_documented_ones_everywhere():
    from samedge.cli.build import build as build_cmd
    from samedge.select import performance, pipeline, weighting
    from samedge.select.label_alignment import DEFAULT_THRESHOLD

    assert {name: build_default(name) for name in DOCUMENTED} == DOCUMENTED
    options = {p.name: p.default for p in build_cmd.params}
    assert {name: options[name] for name in OPTION_FIELDS} == {name: DOCUMENTED[f] for name, f in OPTION_FIELDS.items()}
    assert BuildOptions().model_dump(include=set(DOCUMENTED)) == DOCUMENTED
    assert (pipeline.DEFAULT_K, weighting.DEFAULT_WEIGHTING, weighting.DEFAULT_TEMPERATURE, performance.DEFAULT_SAMPLE,
            DEFAULT_THRESHOLD, performance.DEFAULT_AGREEMENT) == (3, "uniform", 0.05, 32, 0.6, "vote")


def test_combined_is_a_registered_strategy_and_the_cli_offers_every_strategy():
    from samedge.cli.build import build as build_cmd
    from samedge.select.registry import get_strategy, strategy_names

    assert get_strategy("combined").run is not None
    choices = next(p for p in build_cmd.params if p.name == "selection").type.choices
    assert sorted(choices) == strategy_names() == ["combined", "performance", "similarity"]


def test_a_record_reads_back_to_the_same_options(tmp_path):
    opts = BuildOptions(target="contracts", texts=[tmp_path / "t.txt"], labels=parse_label_spec("PER=people,ORG"),
                        dev=tmp_path / "dev.jsonl", k="auto", method="dare_ties", method_params={"density": 0.5},
                        exclude=("btc",), ensemble="vote", align_threshold=None, threads=2, force=True)
    record = opts.record()
    assert json.loads(json.dumps(record)) == record  # plain JSON
    assert "threads" not in record and "force" not in record  # how to run, not what is built
    assert record["texts"] == [str(tmp_path / "t.txt")] and record["labels"][0] == {
        "name": "person", "description": "people", "tag": "PER"}
    again = BuildOptions.from_config(BuildConfig.model_validate(record))
    assert again.record() == record
    assert again.labels == opts.labels


def test_read_build_config_takes_a_bundle_json_or_a_bare_config_and_refuses_the_rest(tmp_path):
    bare = tmp_path / "config.json"
    bare.write_text(json.dumps({"target": "legal", "k": 2}))
    assert read_build_config(bare) == BuildConfig(target="legal", k=2)
    bundle_json = tmp_path / "bundle.json"
    bundle_json.write_text(json.dumps({"format": "samedge-bundle/1", "build": {"target": "news", "quant": "f16"}}))
    assert read_build_config(bundle_json).quant == "f16"
    bundle_json.write_text(json.dumps({"format": "samedge-bundle/1"}))
    with pytest.raises(UserError, match="records no build config"):
        read_build_config(bundle_json)
    bare.write_text(json.dumps({"target": "legal", "kk": 2}))
    with pytest.raises(UserError, match="kk"):
        read_build_config(bare)


@pytest.mark.real
def test_build_from_a_bundles_recorded_config_is_byte_identical(tmp_path, cli_env):
    from samedge.library import Library

    if not Library.open().names():
        pytest.skip("no shipped experts")
    first, second = tmp_path / "first", tmp_path / "second"
    # Options away from the defaults (they must be recorded), similarity selection and f16 to keep it short.
    proc = run_cli(["build", "--target", "news", "--k", "1", "--select", "similarity", "--method", "linear",
                    "--quant", "f16", "--threads", "1", "--out", str(first)],
                   cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads((first / "bundle.json").read_text())["build"]
    assert (recorded["target"], recorded["k"], recorded["selection"], recorded["method"], recorded["quant"]) == (
        "news", 1, "similarity", "linear", "f16")
    proc = run_cli(["build", "--config", str(first / "bundle.json"), "--threads", "1", "--out", str(second)],
                   cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert Path(second / "model.gguf").stat().st_size > 1_000_000


def test_train_defaults_are_a_valid_train_config_and_mistakes_are_named():
    from samedge.config import TrainConfig
    from samedge.train import load_config
    from samedge.train.trainer import default_config

    assert set(default_config()) == set(TrainConfig.model_fields)  # the TOML gives every value, nothing else
    config = load_config(overrides={"lr": 1, "r": 16})
    assert config["lr"] == 1.0 and isinstance(config["lr"], float) and config["r"] == 16
    with pytest.raises(UserError, match="training option gradient_checkpointing must be bool, got 1"):
        load_config(overrides={"gradient_checkpointing": 1})
    with pytest.raises(UserError, match="unknown training option"):
        load_config(overrides={"rank": 8})


def test_manifest_models_check_the_shipped_files_and_name_what_is_wrong(tmp_path):
    from samedge.config import BundleManifest, EmbedderManifest, ExpertManifest, check_manifest
    from samedge.converters.onnx_embedding import MANIFEST_FORMAT
    from samedge.embed import default_embedder_dir, read_manifest as read_embedder_manifest
    from samedge.errors import IntegrityError
    from samedge.library import Library

    assert EmbedderManifest.FORMAT == MANIFEST_FORMAT  # what the converter writes is what samedge reads
    if (default_embedder_dir() / "manifest.json").is_file():
        read_embedder_manifest(default_embedder_dir())
    for expert in Library.open().experts(verify=False):  # every shipped expert.json passes
        check_manifest(ExpertManifest, expert.manifest, expert.name)
    good = {"format": "samedge-bundle/1", "labels": [], "base": {}, "quant": "q8_0", "files": {"model.gguf": "0" * 64}}
    assert check_manifest(BundleManifest, good, "b") is good
    mapped = dict(good, answer_map={"map": {"person": "PER", "misc": None}, "documents": 32})
    assert check_manifest(BundleManifest, mapped, "b") is mapped
    for broken, message in [(dict(good, format="x/1"), "b is not a samedge-bundle/1 manifest"),
                            ({k: v for k, v in good.items() if k != "quant"}, "b lacks quant"),
                            (dict(good, quant=8), "b: quant: Input should be a valid string"),
                            (dict(good, files={"other": "0"}), "b does not list model.gguf"),
                            (dict(good, files={"model.gguf": "0", "../x": "0"}), "b: unsafe path"),
                            (dict(good, answer_map={"map": ["person"]}), "b: answer_map.map: Input should be a valid dictionary"),
                            (dict(good, answer_map={"map": {"person": 3}}), "b: answer_map.map.person")]:
        with pytest.raises(IntegrityError, match=message.replace(".", r"\.")):
            check_manifest(BundleManifest, broken, "b")
