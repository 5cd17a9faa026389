"""The `samedge` command line: version, help, user errors (one line, exit 2) and --debug."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

import samedge
from samedge.cli import main
from tests.timeouts import generous  # noqa: E402

# Written out, not derived from samedge.cli: the test must fail when a command goes missing.
EXPECTED_COMMANDS = ["base", "build", "eval", "experts", "extract", "extract-corpus", "select", "serve", "targets",
                     "train"]


def samedge_cli(*args, env=None):
    """Run the real entry point in a subprocess, so stderr and the exit code are genuine."""
    return subprocess.run([sys.executable, "-m", "samedge", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=generous(120))


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"samedge, version {samedge.__version__}"


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    # Command lines are indented by two spaces; a wrapped description is indented further.
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")}
    assert sorted(listed) == EXPECTED_COMMANDS
    assert "--debug" in result.output and "--version" in result.output


def test_every_command_has_help():
    for name in EXPECTED_COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, f"samedge {name} --help: {result.output}"


def test_user_error_is_one_line_on_stderr_with_exit_code_2(tmp_path):
    result = samedge_cli("eval", "--gold", str(tmp_path / "missing.jsonl"), "--pred", str(tmp_path / "p.jsonl"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "missing.jsonl: no such file" in result.stderr


def test_data_error_names_file_and_line(tmp_path):
    (tmp_path / "gold.conll").write_text("John\tB-PER\nSmith\n", encoding="utf-8")
    result = samedge_cli("eval", "--gold", str(tmp_path / "gold.conll"), "--pred", str(tmp_path / "gold.conll"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'gold.conll'}:2: expected a token and a tag, got 'Smith'"


def test_debug_shows_the_traceback():
    result = samedge_cli("--debug", "targets", "show", "nope")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "UserError: unknown target 'nope'" in result.stderr


def test_usage_errors_are_clicks():
    result = samedge_cli("eval")
    assert result.returncode == 2 and "Missing option '--gold'" in result.stderr
    result = samedge_cli("no-such-command")
    assert result.returncode == 2 and "No such command" in result.stderr


def test_import_stays_light():
    # `import samedge` and the CLI group must not pull in torch or llama.cpp.
    code = ("import sys, samedge, samedge.cli, samedge.data, samedge.extract.prompts, samedge.evaluate, samedge.targets;"
            "print(sorted(m for m in ('torch', 'llama_cpp', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=generous(120))
    assert out.stdout.strip() == "[]", out.stderr


def test_experts_list_shows_the_training_data_licence(tmp_path):
    import json

    def expert(name, **extra):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"x" * 10)
        manifest = {"format": "samedge-expert/1", "name": name, "domain": name, "labels": [],
                    "base": {"base_id": "ab"}, "lora": {"r": 4, "alpha": 8}, "centroid": None,
                    "files": {"adapter_model.safetensors": "00"}, **extra}
        (folder / "expert.json").write_text(json.dumps(manifest))

    expert("zz_finance", licence="CC-BY-NC-4.0")
    expert("zz_voice", licence="CC0-1.0")
    expert("zz_old")  # written before manifests recorded a licence
    result = CliRunner().invoke(main, ["experts", "list", "--library", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()}
    assert "licence" in rows["name"]
    assert "CC-BY-NC-4.0 (non-commercial)" in rows["zz_finance"]
    assert "CC0-1.0" in rows["zz_voice"] and "non-commercial" not in rows["zz_voice"]
    assert " - " in rows["zz_old"]


def test_catalog_domain_licence_reaches_the_training_source(monkeypatch):
    from samedge.data import catalog
    from samedge.train import catalog_source

    monkeypatch.setattr(catalog, "load_split", lambda name, split, **kw: [{"id": split, "text": "x", "entities": []}])
    source = catalog_source("finer_ord")
    assert source.licence == "CC-BY-NC-4.0" and catalog.get_domain("finer_ord").non_commercial
