"""The offline promise and determinism.

- ``import samedge`` switches the hub clients off (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), even over an
  inherited ``=0``;
- ``samedge build`` and ``samedge extract`` run with every socket connection refused (a
  sitecustomize in the subprocess, inside ``unshare -n`` where the OS allows it), attempt none,
  and import neither torch nor transformers;
- the same build inputs give a byte-identical model.gguf and bundle.json; the same extraction
  inputs give identical output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from samedge.bundle import MANIFEST, MODEL
from samedge.files import sha256_file
from tests.bundle_fixtures import (FOUND_SENTENCES, REPO, build_pinned, check_spans, cli_env,  # noqa: F401
                                   offline_environ, read_report, real_bundle, run_cli)
from tests.timeouts import generous  # noqa: E402


def network_namespace() -> list[str]:
    """``unshare -n`` when it works here (root or user namespaces), else nothing (the sitecustomize still guards)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def test_import_samedge_sets_the_offline_switches():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                            "HF_DATASETS_OFFLINE")}
    code = ("import os, sys, samedge; print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TRANSFORMERS_OFFLINE'),"
            " 'torch' in sys.modules, 'transformers' in sys.modules, 'llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["1", "1", "False", "False", "False"]


def test_samedge_forces_the_switches_over_an_inherited_zero(tmp_path):
    """HF_HUB_OFFLINE=0 in the environment does not switch the network back on: after ``import samedge``
    the hub client is offline, and a download of an uncached file fails at once without any connection."""
    pytest.importorskip("huggingface_hub")
    report = tmp_path / "report.json"
    env = offline_environ(tmp_path, dict(os.environ, HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0",
                                         HF_DATASETS_OFFLINE="0", PYTHONPATH=str(REPO)), report)
    code = ("import samedge, huggingface_hub\n"
            "from huggingface_hub import hf_hub_download\n"
            "assert huggingface_hub.constants.HF_HUB_OFFLINE is True\n"
            "try:\n"
            f"    hf_hub_download('HuggingFaceTB/not-cached', 'config.json', cache_dir={str(tmp_path / 'hub')!r})\n"
            "except Exception as e:\n"
            "    print(type(e).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, timeout=generous(120))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["LocalEntryNotFoundError"]
    r = read_report(report)
    assert r["attempts"] == [], r["attempts"]
    assert r["HF_HUB_OFFLINE"] == "1" and r["TRANSFORMERS_OFFLINE"] == "1"


@pytest.mark.real
def test_extract_offline_without_torch(tmp_path, real_bundle, cli_env):
    report = tmp_path / "report.json"
    env = offline_environ(tmp_path, cli_env, report)
    src = tmp_path / "in.txt"
    src.write_text(" ".join(FOUND_SENTENCES[:3]), encoding="utf-8")
    cmd = network_namespace() + [sys.executable, "-m", "samedge", "extract", str(src), "--bundle", str(real_bundle),
                                 "--threads", "1"]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=generous(300))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (doc,) = [json.loads(line) for line in proc.stdout.splitlines()]
    check_spans(doc)
    r = read_report(report)
    assert r["attempts"] == [], r["attempts"]
    assert r["torch"] is False and r["transformers"] is False
    assert r["HF_HUB_OFFLINE"] == "1" and r["TRANSFORMERS_OFFLINE"] == "1"


@pytest.mark.real
def test_extract_in_process_with_the_no_network_fixture(no_network, real_bundle, tmp_path):
    from samedge.cli import main

    src = tmp_path / "in.txt"
    src.write_text(FOUND_SENTENCES[0], encoding="utf-8")
    result = CliRunner().invoke(main, ["extract", str(src), "--bundle", str(real_bundle), "--threads", "1",
                                       "--batch", "2"])
    assert result.exit_code == 0, result.output
    check_spans(json.loads(result.stdout))


@pytest.mark.real
def test_build_offline_without_torch_is_byte_identical(tmp_path, real_bundle, cli_env):
    """The same inputs as the session bundle (target legal, pinned experts, linear, k=2, q8_0), built
    again in a fresh process with sockets refused: the same bytes, and no torch or transformers."""
    report = tmp_path / "report.json"
    env = offline_environ(tmp_path, cli_env, report)
    out = tmp_path / "again"
    if network_namespace():
        from tests.bundle_fixtures import BUILD_SCRIPT
        proc = subprocess.run(network_namespace() + [sys.executable, "-c", BUILD_SCRIPT, str(out), "linear", "2"],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=generous(300))
    else:
        proc = build_pinned(out, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = read_report(report)
    assert r["attempts"] == [], r["attempts"]
    assert r["torch"] is False and r["transformers"] is False
    for name in (MODEL, MANIFEST, "Modelfile"):
        assert sha256_file(out / name) == sha256_file(real_bundle / name), name
    assert sorted(os.listdir(out)) == sorted(os.listdir(real_bundle))


@pytest.mark.real
def test_same_extraction_inputs_give_identical_output(tmp_path, real_bundle, cli_env):
    """The same inputs and options, in two fresh processes: byte-identical output. (Options matter:
    --batch changes how many tokens share a llama.cpp decode, which can flip greedy near-ties; see
    tests/test_extract.py::test_real_batched_decoding_equals_one_at_a_time.)"""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": s}) + "\n" for i, s in enumerate(FOUND_SENTENCES)),
                   encoding="utf-8")
    runs = [run_cli(["extract", src, "--bundle", real_bundle, "--threads", "1", "--batch", "4"], cli_env)
            for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
    assert runs[0].stdout == runs[1].stdout
    docs = [json.loads(line) for line in runs[0].stdout.splitlines()]
    assert len(docs) == len(FOUND_SENTENCES) and sum(len(d["entities"]) for d in docs) >= 4
