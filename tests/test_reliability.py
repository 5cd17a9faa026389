"""Reliability: bad input, bad bundles, bad experts and faults (SIGKILL, races, interrupted copies,
a full disk). Each case asserts a one-line error with exit code 2 (no traceback) or correct output,
and that nothing is lost or half-written. RELIABILITY.md lists the cases and these tests."""

from __future__ import annotations

import codecs
import errno
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from samedge.bundle import MANIFEST, MODEL, read_bundle, verify_bundle
from samedge.cli import main
from samedge.data.labels import make_label
from samedge.errors import IntegrityError, UserError
from samedge.extract import Extractor
from samedge.files import atomic_dir, atomic_write_bytes, atomic_write_text, sha256_file
from tests.bundle_fixtures import (FOUND_SENTENCES, REPO, GoldEngine, assert_one_line_error, check_spans,  # noqa: F401
                                   cli_env, real_bundle, run_cli)
from tests.timeouts import generous  # noqa: E402

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64
LABELS = [make_label("person"), make_label("location")]


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def extract_cli(paths, bundle, env, *extra, input=None):
    return run_cli(["extract", *paths, "--bundle", bundle, "--threads", "1", *extra], env, input=input)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".incomplete", ".creating", ".old")))


# --- input text through the CLI ----------------------------------------------------------

BAD_INPUTS = {
    "invalid_utf8": ("Ann lives in Paris.\nBob \xff".encode("latin-1"), ["invalid UTF-8 at byte offset 24", ":2:"]),
    "empty": (b"", ["file is empty"]),
    "png": (PNG, ["binary file"]),
    "utf16_bom": (codecs.BOM_UTF16_LE + "Ann lives in Paris.".encode("utf-16-le"), ["UTF-16"]),
    "missing": (None, ["no such file"]),
}


@pytest.mark.real
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(case, tmp_path, real_bundle, cli_env):
    data, needles = BAD_INPUTS[case]
    path = tmp_path / f"{case}.txt"
    if data is not None:
        path.write_bytes(data)
    proc = extract_cli([path], real_bundle, cli_env)
    assert_one_line_error(proc, str(path), *needles)
    assert proc.stdout == ""


def without_dac_override():
    """A preexec_fn under which permissions bind even for root: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    leave the bounding set, so the exec'd process lacks them. None for other users (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, caps = 24, (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH

    def drop():
        for cap in caps:
            if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")
    return drop


@pytest.mark.real
def test_unreadable_file_through_the_cli(tmp_path, real_bundle, cli_env):
    """chmod 000 beside a good file: the good one is processed, the unreadable one listed, exit code 2.
    As root the CLI runs without the capabilities that bypass permissions, so the test runs there too."""
    good, secret = tmp_path / "good.txt", tmp_path / "secret.txt"
    good.write_text(FOUND_SENTENCES[1], encoding="utf-8")
    secret.write_text("Ann")
    secret.chmod(0)
    try:
        cmd = [sys.executable, "-m", "samedge", "extract", str(good), str(secret), "--bundle", str(real_bundle),
               "--threads", "1"]
        preexec = without_dac_override()
        try:
            proc = subprocess.run(cmd, env=cli_env, cwd=REPO, capture_output=True, text=True, timeout=generous(300),
                                  preexec_fn=preexec)
        except subprocess.SubprocessError as e:  # prctl refused (no CAP_SETPCAP in this container)
            pytest.skip(f"cannot make permissions bind for root here: {e}")
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert proc.stderr.splitlines()[1:] == [f"error: {secret}: permission denied"]
        assert proc.stderr.splitlines()[0].endswith("1 failed")
        (doc,) = jsonl(proc.stdout)
        assert doc["id"] == str(good)
        check_spans(doc)
    finally:
        secret.chmod(0o644)


@pytest.mark.real
def test_invalid_utf8_with_errors_replace_works_and_says_so(tmp_path, real_bundle, cli_env):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 talk. ".encode("latin-1") + FOUND_SENTENCES[1].encode())
    proc = extract_cli([path], real_bundle, cli_env, "--errors", "replace")
    assert proc.returncode == 0, proc.stderr
    (doc,) = jsonl(proc.stdout)
    assert doc["text"] == "Caf\ufffd talk. " + FOUND_SENTENCES[1]
    assert "decoded text" in doc["offsets"]
    check_spans(doc)


@pytest.mark.real
def test_whitespace_only_file_is_a_document_with_no_entities(tmp_path, real_bundle, cli_env):
    path = tmp_path / "blank.txt"
    path.write_bytes(b" \r\n\t \n\n   ")
    proc = extract_cli([path], real_bundle, cli_env)
    assert proc.returncode == 0, proc.stderr
    (doc,) = jsonl(proc.stdout)
    assert doc["text"] == " \r\n\t \n\n   " and doc["entities"] == [] and doc["counts"]["chunks"] == 0
    assert "1 documents, 0 entities" in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.real
def test_mixed_good_and_bad_files_in_one_run(tmp_path, real_bundle, cli_env):
    good1, good2 = tmp_path / "good1.txt", tmp_path / "good2.txt"
    good1.write_text(FOUND_SENTENCES[0], encoding="utf-8")
    good2.write_text(FOUND_SENTENCES[1], encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xc3\x28")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.txt"
    out = tmp_path / "out.jsonl"
    proc = extract_cli([good1, missing, bad, good2, empty], real_bundle, cli_env, "-o", out)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    docs = jsonl(out.read_text(encoding="utf-8"))
    assert [d["id"] for d in docs] == [str(good1), str(good2)]
    for d in docs:
        check_spans(d)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"bundle: {real_bundle}; 2 documents") and lines[0].endswith("3 failed")
    assert lines[1:] == [f"error: {missing}: no such file",
                         f"error: {bad}:1: invalid UTF-8 at byte offset 3 (byte 0xc3); re-encode the file as UTF-8",
                         f"error: {empty}: file is empty"]


# --- bundles -----------------------------------------------------------------------------

def bundle_copy(src: Path, dest: Path, copy_model: bool = False) -> Path:
    """A bundle beside the session one: model.gguf hard-linked (or copied, to be damaged)."""
    dest.mkdir()
    for name in os.listdir(src):
        if name == MODEL and copy_model:
            shutil.copyfile(src / name, dest / name)
        elif name == MODEL:
            os.link(src / name, dest / name)
        else:
            shutil.copyfile(src / name, dest / name)
    return dest


def rehash(bundle: Path) -> None:
    data = json.loads((bundle / MANIFEST).read_text())
    data["files"][MODEL] = sha256_file(bundle / MODEL)
    (bundle / MANIFEST).write_text(json.dumps(data))


def flip_bit(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x10]))


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def damage(case: str, b: Path) -> list[str]:
    """Damage bundle ``b``; return the words the error must contain."""
    manifest = json.loads((b / MANIFEST).read_text())
    if case == "bit_flip":
        flip_bit(b / MODEL, (b / MODEL).stat().st_size // 2)
        return ["integrity check", "model.gguf: sha256 mismatch"]
    if case == "truncated":
        truncate(b / MODEL, (b / MODEL).stat().st_size // 3)
        return ["integrity check", "model.gguf: sha256 mismatch"]
    if case == "truncated_rehashed":  # hash matches a truncated file: llama.cpp must refuse it, not abort
        truncate(b / MODEL, (b / MODEL).stat().st_size // 3)
        rehash(b)
        return ["could not load this GGUF file"]
    if case == "not_gguf":
        (b / MODEL).unlink()
        (b / MODEL).write_bytes(b"<html>not a model</html>" * 100)
        rehash(b)
        return ["is not a GGUF file"]
    if case == "model_missing":
        (b / MODEL).unlink()
        return ["model.gguf: missing"]
    if case == "manifest_missing":
        (b / MANIFEST).unlink()
        return ["bundle.json is missing"]
    if case == "manifest_malformed":
        (b / MANIFEST).write_text(json.dumps(manifest)[:200])
        return ["bundle.json is not valid JSON"]
    if case == "manifest_not_utf8":
        (b / MANIFEST).write_bytes(b"\xff\xfe{}")
        return ["bundle.json is not valid JSON"]
    if case == "manifest_wrong_format":
        (b / MANIFEST).write_text(json.dumps(dict(manifest, format="something-else/9")))
        return ["is not a samedge-bundle/1 manifest"]
    if case == "manifest_unsafe_path":
        manifest["files"]["../../etc/passwd"] = "0" * 64
        (b / MANIFEST).write_text(json.dumps(manifest))
        return ["unsafe path in manifest", "../../etc/passwd"]
    if case == "manifest_absolute_path":
        manifest["files"]["/etc/passwd"] = "0" * 64
        (b / MANIFEST).write_text(json.dumps(manifest))
        return ["unsafe path in manifest", "/etc/passwd"]
    if case == "manifest_without_model":
        del manifest["files"][MODEL]
        (b / MANIFEST).write_text(json.dumps(manifest))
        return ["does not list model.gguf"]
    raise AssertionError(case)


BUNDLE_CASES = ["bit_flip", "truncated", "truncated_rehashed", "not_gguf", "model_missing", "manifest_missing",
                "manifest_malformed", "manifest_not_utf8", "manifest_wrong_format", "manifest_unsafe_path",
                "manifest_absolute_path", "manifest_without_model"]


@pytest.mark.real
@pytest.mark.parametrize("case", BUNDLE_CASES)
def test_damaged_bundle_is_one_line_exit_2(case, tmp_path, real_bundle, cli_env):
    b = bundle_copy(real_bundle, tmp_path / "bundle", copy_model=case in ("bit_flip", "truncated", "truncated_rehashed"))
    needles = damage(case, b)
    text = tmp_path / "in.txt"
    text.write_text(FOUND_SENTENCES[0])
    proc = extract_cli([text], b, cli_env)
    assert_one_line_error(proc, str(b), *needles)
    assert proc.stdout == ""


@pytest.mark.real
def test_missing_bundle(tmp_path, cli_env):
    text = tmp_path / "in.txt"
    text.write_text("Ann lives in Paris.")
    proc = extract_cli([text], tmp_path / "no_such_bundle", cli_env)
    assert_one_line_error(proc, "no_such_bundle does not exist", "samedge build")
    from tests.bundle_fixtures import cli_environ, isolated_home

    fresh = cli_environ(isolated_home(tmp_path))  # a home where no bundle was ever built
    proc = run_cli(["extract", text, "--threads", "1"], fresh, cwd=tmp_path)  # no --bundle, none built yet
    assert_one_line_error(proc, "no bundle given and none built yet")


@pytest.mark.real
def test_bundle_built_for_another_base(tmp_path, real_bundle, cli_env):
    """bundle.json is not itself hashed (it holds the hashes). The base identity it records is checked
    where a caller requires a base (``verify_bundle(path, base_id)``: refused, naming both); extraction
    needs only the merged model, whose hash still matches, so it works and says which bundle it used."""
    b = bundle_copy(real_bundle, tmp_path / "bundle")
    manifest = json.loads((b / MANIFEST).read_text())
    ours = manifest["base"]["base_id"]
    manifest["base"]["base_id"] = "f" * 64
    (b / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=f"built for base ffffffffffff, not {ours[:12]}"):
        verify_bundle(b, base_id=ours)
    assert verify_bundle(b)["base"]["base_id"] == "f" * 64
    assert verify_bundle(real_bundle, base_id=ours)["base"]["base_id"] == ours
    text = tmp_path / "in.txt"
    text.write_text(FOUND_SENTENCES[0])
    proc = extract_cli([text], b, cli_env)
    assert proc.returncode == 0 and f"bundle: {b};" in proc.stderr


def test_read_bundle_refuses_a_file_and_lists(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a directory"):
        read_bundle(tmp_path / "file")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / MANIFEST).write_text("[1, 2]")
    with pytest.raises(IntegrityError, match="not a samedge-bundle/1 manifest"):
        read_bundle(tmp_path / "b")


# --- scale: many files, a big file (fake engine: the plumbing, not the model) -------------

def test_directory_of_5000_small_files(tmp_path):
    from samedge.extract.api import run_extract

    src = tmp_path / "many"
    for i in range(5000):
        sub = src / f"d{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"Doc {i}: Ann met Bob in Paris." if i % 3 else f"Doc {i}: nobody.")
    (src / "d0" / "skip.md").write_text("not matched")
    engine = GoldEngine({"Ann": "person", "Bob": "person", "Paris": "location"})
    out = tmp_path / "out.jsonl"
    start = time.time()
    summary = run_extract([str(src)], extractor=Extractor(engine, LABELS), output=str(out), glob="*.txt",
                          progress=False)
    elapsed = time.time() - start
    docs = jsonl(out.read_text(encoding="utf-8"))
    assert summary["documents"] == len(docs) == 5000 and summary["failures"] == []
    assert [d["id"] for d in docs] == sorted(str(p) for p in src.rglob("*.txt"))
    by_id = {d["id"]: d for d in docs}
    for i in range(5000):
        d = by_id[str(src / f"d{i % 10}" / f"f{i:04d}.txt")]
        assert [e["text"] for e in d["entities"]] == (["Ann", "Bob", "Paris"] if i % 3 else [])
    assert summary["entities"] == 3 * sum(1 for i in range(5000) if i % 3)
    print(f"\n5000 files: {elapsed:.1f} s through run_extract")
    assert elapsed < 60


BIG_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    from samedge.api import run_extract
    from samedge.data.labels import make_label
    from samedge.extract import Extractor
    from tests.bundle_fixtures import GoldEngine
    src, out = sys.argv[1], sys.argv[2]
    engine = GoldEngine({"Ann Lee": "person", "Paris": "location", "Bob": "person"})
    ex = Extractor(engine, [make_label("person"), make_label("location")])
    start = time.time()
    summary = run_extract([src], extractor=ex, output=out, progress=False)
    # VmHWM (this process image's peak), not ru_maxrss: that one keeps the forking parent's RSS.
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"summary": summary, "seconds": time.time() - start, "peak_rss_mb": peak}))
""")


def _extract_in_child(src: Path, out: Path, env) -> dict:
    proc = subprocess.run([sys.executable, "-c", BIG_SCRIPT, str(src), str(out)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=generous(300))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_20_mb_text_file(tmp_path, cli_env):
    """A 20 MB file through run_extract in a fresh process (fake engine: reading, chunking, windows of
    chunks and the streamed record, not the model): the output is complete (the whole text, every
    entity) and peak RSS stays within 3x the file's size above that of a one-line file in the same
    conditions (the text is held once; chunks, model work and entities stream). Before streaming it
    was 18x (368 MB above). benchmarks/big_input.py reports the figures in BENCHMARKS.md."""
    sentence = "Ann Lee flew from Paris on Monday; the committee met and the weather was fine all week, said Bob.\n"
    small = tmp_path / "small.txt"
    small.write_text(sentence, encoding="utf-8")
    base = _extract_in_child(small, tmp_path / "small.jsonl", cli_env)
    src = tmp_path / "big.txt"
    n = 20_000_000 // len(sentence) + 1
    src.write_text(sentence * n, encoding="utf-8")
    out = tmp_path / "big.jsonl"
    report = _extract_in_child(src, out, cli_env)
    (doc,) = jsonl(out.read_text(encoding="utf-8"))
    assert doc["text"] == sentence * n
    assert len(doc["entities"]) == report["summary"]["entities"] == 3 * n
    assert doc["entities"][-1]["start"] == len(doc["text"]) - 5  # "Bob.\n": the very end is there
    assert doc["counts"]["chunks"] > 10_000 and doc["counts"]["unfinished_answers"] == 0
    size_mb = src.stat().st_size / 2 ** 20
    extra = report["peak_rss_mb"] - base["peak_rss_mb"]
    print(f"\n20 MB file ({3 * n} entities): {report['seconds']:.1f} s, peak RSS {report['peak_rss_mb']:.0f} MB "
          f"({extra:.0f} MB above a one-line file's {base['peak_rss_mb']:.0f} MB)")
    assert extra < 3 * size_mb, (extra, size_mb)


# --- the expert library: refusals ---------------------------------------------------------

SHIPPED = REPO / "models" / "experts"


def expert_copy(dest: Path, name: str = "conll2003") -> Path:
    src = SHIPPED / name
    if not (src / "expert.json").is_file():
        pytest.skip(f"shipped expert {name} not trained yet")
    shutil.copytree(src, dest)
    return dest


def rehash_expert(folder: Path) -> None:
    manifest = json.loads((folder / "expert.json").read_text())
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"]}
    (folder / "expert.json").write_text(json.dumps(manifest))


def edit_tensors(folder: Path, edit) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(folder / "adapter_model.safetensors")
    edit(tensors)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    rehash_expert(folder)


def make_expert_case(case: str, folder: Path) -> list[str]:
    """An expert folder with one defect; the words the refusal must contain."""
    q_a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    if case == "nan":
        expert_copy(folder)

        def put_nan(t):
            t[q_a] = t[q_a].copy()
            t[q_a][3, 7] = np.nan
        edit_tensors(folder, put_nan)
        return ["contains NaN or Inf", q_a]
    if case == "inf":
        expert_copy(folder)

        def put_inf(t):
            key = "base_model.model.model.layers.5.mlp.down_proj.lora_B.weight"
            t[key] = t[key].copy()
            t[key][0, 0] = np.inf
        edit_tensors(folder, put_inf)
        return ["contains NaN or Inf"]
    if case == "shape":
        expert_copy(folder)

        def reshape(t):
            t[q_a] = np.zeros((t[q_a].shape[0], t[q_a].shape[1] - 1), dtype=t[q_a].dtype)
        edit_tensors(folder, reshape)
        from samedge.library import SHIPPED_RANK  # the shipped experts' stored LoRA rank
        return [f"has shape ({SHIPPED_RANK}, 575), expected ({SHIPPED_RANK}, 576)", q_a]
    if case == "another_base":
        # A tiny 2-layer, hidden-64 expert as tests/tiny_experts.py writes them (numpy here, no torch).
        from safetensors.numpy import save_file

        from samedge.files import hash_files

        folder.mkdir()
        rng = np.random.default_rng(0)
        tensors = {}
        for layer in range(2):
            for mod, (o, i) in {"self_attn.q_proj": (64, 64), "mlp.down_proj": (64, 128)}.items():
                p = f"base_model.model.model.layers.{layer}.{mod}"
                tensors[f"{p}.lora_A.weight"] = rng.normal(size=(4, i)).astype(np.float32)
                tensors[f"{p}.lora_B.weight"] = rng.normal(size=(o, 4)).astype(np.float32)
        save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
        (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "peft_type": "LORA"}))
        manifest = {"format": "samedge-expert/1", "name": "tiny", "domain": "tiny", "description": "tiny",
                    "labels": [make_label("person").to_dict()], "base": {"name": "tiny", "base_id": "ab" * 32},
                    "lora": {"r": 4, "alpha": 8}, "training": {}, "dev": {}, "centroid": None,
                    "files": hash_files(folder, ["adapter_model.safetensors", "adapter_config.json"])}
        (folder / "expert.json").write_text(json.dumps(manifest))
        return ["was trained on base abababababab"]
    if case in ("dotdot", "absolute"):
        expert_copy(folder)
        manifest = json.loads((folder / "expert.json").read_text())
        bad = "../../outside.safetensors" if case == "dotdot" else "/etc/passwd"
        manifest["files"][bad] = "0" * 64
        (folder / "expert.json").write_text(json.dumps(manifest))
        return ["unsafe path in manifest", bad]
    if case == "pickle":
        expert_copy(folder)
        (folder / "adapter_model.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 32)  # a pickle header
        return ["pickled files are refused", "adapter_model.bin", "safetensors only"]
    if case == "pickle_only":
        expert_copy(folder)
        (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
        return ["pickled files are refused"]
    if case == "tampered":
        expert_copy(folder)
        flip_bit(folder / "adapter_model.safetensors", 4096)
        return ["adapter_model.safetensors: sha256 mismatch"]
    if case == "not_safetensors":
        expert_copy(folder)
        (folder / "adapter_model.safetensors").write_bytes(b"garbage" * 100)
        rehash_expert(folder)
        return ["not a readable safetensors file"]
    if case == "no_manifest":
        expert_copy(folder)
        (folder / "expert.json").unlink()
        return ["not an expert (expert.json missing)"]
    raise AssertionError(case)


EXPERT_CASES = ["nan", "inf", "shape", "another_base", "dotdot", "absolute", "pickle", "pickle_only", "tampered",
                "not_safetensors", "no_manifest"]


def experts_cli(args, library: Path):
    return CliRunner().invoke(main, ["experts", *args], env={"SAMEDGE_LIBRARY": str(library)})


@pytest.mark.real
@pytest.mark.parametrize("case", EXPERT_CASES)
def test_experts_add_refuses(case, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    folder = tmp_path / "incoming"
    needles = make_expert_case(case, folder)
    result = experts_cli(["add", str(folder), "--name", "candidate"], library)
    assert result.exit_code == 2, (result.output, result.exception)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in line, (needle, line)
    assert os.listdir(library) == []  # nothing added, nothing half-copied


@pytest.mark.real
def test_experts_add_accepts_the_unmodified_copy(tmp_path):
    library = tmp_path / "library"
    folder = expert_copy(tmp_path / "incoming")
    result = experts_cli(["add", str(folder), "--name", "candidate"], library)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(library / "candidate")) == ["adapter_config.json", "adapter_model.safetensors",
                                                         "expert.json"]
    assert experts_cli(["verify"], library).exit_code == 0


# --- faults: experts add interrupted --------------------------------------------------------

def half_copy_then(exc_or_kill):
    """A shutil.copyfile that writes half of the second file, then fails (or SIGKILLs the process)."""
    calls = []
    real = shutil.copyfile

    def copyfile(src, dst, *a, **kw):
        calls.append(src)
        if len(calls) < 2:
            return real(src, dst, *a, **kw)
        data = Path(src).read_bytes()
        with open(dst, "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
        if exc_or_kill == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise exc_or_kill

    return copyfile


@pytest.mark.real
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_experts_add_interrupted_mid_copy_leaves_nothing(tmp_path, monkeypatch, exc):
    from samedge.library import Library

    library = tmp_path / "library"
    folder = expert_copy(tmp_path / "incoming")
    monkeypatch.setattr(shutil, "copyfile", half_copy_then(exc))
    with pytest.raises((KeyboardInterrupt, UserError)):
        Library.open(library).add(folder, name="candidate")
    assert os.listdir(library) == [".candidate.lock"] or os.listdir(library) == []
    assert Library.open(library, include_shipped=False).names() == []


KILL_ADD = textwrap.dedent("""
    import sys, shutil
    from samedge.library import Library
    from tests.test_reliability import half_copy_then
    shutil.copyfile = half_copy_then("kill")
    Library.open(sys.argv[1]).add(sys.argv[2], name="candidate")
""")


@pytest.mark.real
def test_experts_add_sigkilled_mid_copy_then_retried(tmp_path, cli_env):
    from samedge.library import Library

    library = tmp_path / "library"
    folder = expert_copy(tmp_path / "incoming")
    proc = subprocess.run([sys.executable, "-c", KILL_ADD, str(library), str(folder)], env=cli_env, cwd=REPO,
                          capture_output=True, text=True, timeout=generous(120))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert leftovers(library)  # the killed copy's temp folder ...
    assert Library.open(library, include_shipped=False).names() == []  # ... is not an expert
    result = experts_cli(["add", str(folder), "--name", "candidate"], library)
    assert result.exit_code == 0, result.output
    assert Library.open(library, include_shipped=False).names() == ["candidate"]
    assert leftovers(library) == []  # and the next add swept it


# --- faults: a full disk ------------------------------------------------------------------

class FullDisk:
    """Files opened for writing accept ``room`` bytes, then fail with ENOSPC."""

    def __init__(self, real_open, room: int):
        self.real_open, self.room = real_open, room

    def __call__(self, file, mode="r", *args, **kw):
        f = self.real_open(file, mode, *args, **kw)
        if "w" not in mode and "a" not in mode:
            return f
        disk = self
        real_write = f.write

        class Writer:
            def __getattr__(self, name):
                return getattr(f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                if len(data) > disk.room:
                    real_write(data[:disk.room])
                    disk.room = 0
                    raise OSError(errno.ENOSPC, "No space left on device")
                disk.room -= len(data)
                return real_write(data)

        return Writer()


def test_full_disk_in_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    import samedge.files as files

    dest = tmp_path / "out.json"
    atomic_write_text(dest, "old content\n")
    monkeypatch.setattr(files, "open", FullDisk(open, room=100), raising=False)
    with pytest.raises(UserError, match=r"out.json: could not write \(No space left on device\); nothing was changed"):
        atomic_write_bytes(dest, b"x" * 10_000)
    assert dest.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_full_disk_in_atomic_dir_publishes_nothing(tmp_path):
    dest = tmp_path / "bundle"
    with pytest.raises(UserError, match="No space left on device"):
        with atomic_dir(dest) as tmp:
            (tmp / "model.gguf").write_bytes(b"GGUF" + b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_full_disk_while_writing_extract_output(tmp_path, monkeypatch):
    import samedge.extract.api as api

    src = tmp_path / "in.txt"
    src.write_text("Ann Lee met Bob in Paris. " * 2000)
    out = tmp_path / "out.jsonl"
    out.write_text("previous run\n")
    monkeypatch.setattr(api, "open", FullDisk(open, room=5000), raising=False)
    with pytest.raises(UserError, match="No space left on device"):
        api.run_extract([str(src)], extractor=Extractor(GoldEngine({"Bob": "person"}), LABELS), output=str(out),
                        progress=False)
    assert out.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def _limit_file_size(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return preexec


@pytest.mark.real
def test_build_on_a_full_disk_is_one_line_and_publishes_nothing(tmp_path, cli_env, real_bundle):
    """A real write failure inside `samedge build` (a 32 MB file-size limit: EFBIG, as a full disk gives
    ENOSPC): one line, exit code 2, no bundle and no temp folder left."""
    out = tmp_path / "legal"
    proc = subprocess.run([sys.executable, "-m", "samedge", "build", "--target", "legal", "--k", "1", "--method",
                           "linear", "--threads", "1", "--out", str(out)], env=cli_env, cwd=REPO,
                          capture_output=True, text=True, timeout=generous(300), preexec_fn=_limit_file_size(32 << 20))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "nothing was changed" in errors[0], proc.stderr
    assert "File too large" in errors[0] or "is the disk full?" in errors[0], errors[0]
    assert not out.exists()
    assert leftovers(tmp_path) == []


# --- faults: SIGKILL during builds, racing builds -------------------------------------------

# k=1: a different bundle from the session one (k=2), so that "old" and "new" can be told apart.
BUILD_ARGS = ["build", "--target", "legal", "--k", "1", "--method", "linear", "--threads", "1"]


def start_build(out: Path, env, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "samedge", *BUILD_ARGS, "--out", str(out), *extra], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    return proc, lines, reader


def bundle_state(out: Path, old_manifest: str | None) -> str:
    """'absent', 'old' or 'new' (complete and verified); anything else fails the test."""
    if not out.exists():
        return "absent"
    assert sorted(os.listdir(out)) == ["Modelfile", MANIFEST, MODEL], os.listdir(out)
    verify_bundle(out)
    return "old" if (out / MANIFEST).read_text() == old_manifest else "new"


# Where each kill lands: (stage marker on stderr or None for "after spawn", max random delay after it, s).
KILL_PLAN = [(None, 0.25), (None, 0.25), ("[select]", 0.4), ("[select]", 0.4), ("[merge", 4.0), ("[merge", 4.0),
             ("[merge", 4.0), ("[quantize", 1.2), ("[answer map]", 3.0), ("[bundle]", 0.25)]


@pytest.mark.real
def test_build_sigkilled_at_random_points(tmp_path, cli_env, real_bundle):
    """20 builds killed with SIGKILL at random times within each stage (startup, selection, merge,
    quantize, the answer map, bundling and publishing). Trials 0-9 start with no bundle at the output, 10-19 over an
    existing one (--force). After every kill the output is absent, the old bundle, or a complete new
    one; never partial. Then a build runs to the end and succeeds, and no temp folder is left."""
    out = tmp_path / "legal"
    old_manifest = (real_bundle / MANIFEST).read_text()
    rng = random.Random(8)
    stages, states = Counter(), Counter()
    for trial in range(20):
        if out.exists():
            shutil.rmtree(out)
        if trial >= 10:
            bundle_copy(real_bundle, out)
        marker, spread = KILL_PLAN[trial % len(KILL_PLAN)]
        proc, lines, reader = start_build(out, cli_env, "--force")
        deadline = time.time() + rng.uniform(0.05, spread) if marker is None else None
        while proc.poll() is None:
            if deadline is None and any(line.startswith(marker) for line in list(lines)):
                deadline = time.time() + rng.uniform(0, spread)
            if deadline is not None and time.time() >= deadline:
                break
            if out.exists():  # whatever is visible is a whole bundle (one readdir: consistent)
                assert sorted(os.listdir(out)) == ["Modelfile", MANIFEST, MODEL]
            time.sleep(0.01)
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(5)
        marks = [line.strip() for line in lines if line.startswith("[")]
        stages["finished" if finished else (marks[-1].split()[0].strip("[]") if marks else "startup")] += 1
        if finished:
            assert proc.returncode == 0, "".join(lines)[-2000:]
        state = bundle_state(out, old_manifest)
        assert state != "absent" or trial < 10, "an existing bundle vanished"
        states[state] += 1
    print(f"\nkilled in stage: {dict(stages)}; output afterwards: {dict(states)}")
    assert len([s for s in stages if s != "finished"]) >= 4  # the kills landed in several stages

    proc = run_cli([*BUILD_ARGS, "--out", out, "--force"], cli_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert bundle_state(out, old_manifest) == "new"
    assert leftovers(tmp_path) == []  # the killed builds' temp folders were swept


@pytest.mark.real
def test_two_builds_racing_to_one_output(tmp_path, cli_env):
    """Two different builds (k=1 and k=2) race to one path without --force: one wins, the other stops
    with a one-line error; the bundle is wholly the winner's."""
    out = tmp_path / "race"
    runs = [start_build(out, cli_env, "--k", str(k)) for k in (1, 2)]
    for proc, _, reader in runs:
        proc.wait(timeout=generous(300))
        reader.join(5)
    codes = [proc.returncode for proc, _, _ in runs]
    assert sorted(codes) == [0, 2], [("".join(lines))[-1500:] for _, lines, _ in runs]
    winner = codes.index(0)
    loser_lines = runs[1 - winner][1]
    errors = [line for line in loser_lines if line.startswith("error: ")]
    assert len(errors) == 1 and ("already exists" in errors[0] or "created by another process meanwhile" in errors[0])
    assert not any("Traceback" in line for line in loser_lines)
    data = verify_bundle(out)
    assert len(data["merge"]["experts"]) == (1, 2)[winner]
    assert sorted(os.listdir(out)) == ["Modelfile", MANIFEST, MODEL]
    assert leftovers(tmp_path) == []


def test_manifests_keep_number_lists_on_one_line_and_round_trip():
    # An expert's 384-number centroid on one line saves 2.7 KB an expert: 20 experts and the
    # embedder fit models/'s 100 MB only so.
    import json

    from samedge.files import dumps_json

    obj = {"centroid": {"vector": [0.020499, -0.1, 3e-05, 7]}, "nested": [[1, 2], [3]], "names": ["a", "b"],
           "mixed": [1, "a"], "empty": []}
    text = dumps_json(obj)
    assert json.loads(text) == obj
    assert '"vector": [0.020499,-0.1,3e-05,7]' in text
    assert '    [1,2],\n    [3]\n' in text
    assert '"names": [\n    "a",\n    "b"\n  ]' in text  # other lists keep one item a line
