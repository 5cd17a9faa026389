"""Shared pieces for the extract, input, reliability and offline tests.

- ``GoldEngine`` / ``ScriptedEngine``: fake engines (no model) that answer from a gold
  mapping or a script, so chunking and parsing are tested exactly and fast;
- ``real_bundle``: ONE real SmolLM2 bundle per session (target legal, linear merge, the
  two first shipped experts pinned, so that experts the background trainer adds later
  do not change it), built in a subprocess with one thread;
- ``samedge_env`` / ``run_cli``: the real ``samedge`` entry point in a subprocess,
  with an isolated ``$SAMEDGE_HOME`` (the cached base is shared through symlinks,
  so nothing is re-provisioned and the user's "last bundle" is left alone);
- ``offline_site``: a ``sitecustomize`` that forbids every socket connection in a
  subprocess and reports, at exit, the attempts and whether torch/transformers
  were imported.

Import the fixtures in a test module with
``from tests.bundle_fixtures import real_bundle, cli_env  # noqa: F401``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.timeouts import generous

REPO = Path(__file__).resolve().parents[1]
PINNED_EXPERTS = ("conll2003", "wnut17")
TARGET = "legal"

# CoNLL-2003 test sentences (detokenised) on which the weak shipped experts do find
# entities, checked empirically with the legal bundle; used by the end-to-end tests.
FOUND_SENTENCES = [
    "Hosts UAE play Kuwait and South Korea take on Indonesia on Saturday in Group A matches.",
    "It was the second costly blunder by Syria in four minutes.",
    "Japan then laid siege to the Syrian penalty area for most of the game but rarely breached the Syrian defence.",
    "Despite winning the Asian Games title two years ago, Uzbekistan are in the finals as outsiders.",
    "China controlled most of the match and saw several chances missed until the 78th minute.",
    "Syria had taken the lead from their first serious attack in the seventh minute.",
    "SOCCER - JAPAN GET LUCKY WIN, CHINA IN SURPRISE DEFEAT.",
    "AL-AIN, United Arab Emirates 1996-12-06",
]


# --- fake engines ------------------------------------------------------------------

class GoldEngine:
    """Answers like a perfect model: every gold mention found in the chunk, in text order.

    ``gold`` maps a mention to its label; a mention is found where it occurs as a
    whole word (or anywhere, for scripts without spaces when ``words=False``).
    ``count_tokens`` counts whitespace-separated words (or characters / 4).
    """

    name = "gold"
    n_ctx = None

    def __init__(self, gold: dict[str, str], *, words: bool = True, tokens: str = "words",
                 max_answer_lines: int | None = None):
        self.gold = dict(gold)
        self.words = words
        self.tokens = tokens
        self.max_answer_lines = max_answer_lines
        self.calls: list[list[str]] = []
        names = sorted(self.gold, key=len, reverse=True)
        alternation = "|".join(re.escape(n) for n in names) or r"(?!x)x"
        self.pattern = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)" if words else f"(?:{alternation})")

    def count_tokens(self, text: str) -> int:
        if self.tokens == "chars":
            return (len(text) + 3) // 4
        return len(text.split())

    def answer(self, text: str) -> tuple[str, bool]:
        text.encode("utf-8")  # what llama.cpp would need: valid Unicode (no lone surrogates)
        lines = [f"{self.gold[m.group()]}: {m.group()}" for m in self.pattern.finditer(text)]
        if self.max_answer_lines is not None and len(lines) > self.max_answer_lines:
            return "\n".join(lines[:self.max_answer_lines]), False
        return ("\n".join(lines) if lines else "none"), True

    def complete(self, prefix, texts, suffix, max_tokens):
        self.calls.append(list(texts))
        return [self.answer(t) for t in texts]


class ScriptedEngine:
    """Answers each chunk with ``script(text) -> (answer, finished)``."""

    name = "scripted"
    n_ctx = None

    def __init__(self, script, tokens=lambda t: len(t.split())):
        self.script = script
        self.tokens = tokens
        self.calls: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return self.tokens(text)

    def complete(self, prefix, texts, suffix, max_tokens):
        self.calls.append(list(texts))
        return [self.script(t) for t in texts]


def check_spans(doc: dict, labels=None) -> None:
    """Every entity lies inside the text, with text[start:end] == entity text."""
    text = doc["text"]
    for e in doc["entities"]:
        assert 0 <= e["start"] < e["end"] <= len(text), e
        assert text[e["start"]:e["end"]] == e["text"], e
        if labels is not None:
            assert e["label"] in labels, e


# --- subprocess helpers ------------------------------------------------------------

def isolated_home(root: Path) -> Path:
    """A fresh $SAMEDGE_HOME whose base and id caches are the real ones (symlinked)."""
    from tests.homes import home_sharing_model_caches

    return home_sharing_model_caches(root / "samedge_home")


def cli_environ(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SAMEDGE_BUNDLE", "SAMEDGE_LIBRARY")}
    env.update(SAMEDGE_HOME=str(home), PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(args, env, *, input: bytes | None = None, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    """``python -m samedge ARGS`` in a subprocess; stdout/stderr as text."""
    proc = subprocess.run([sys.executable, "-m", "samedge", *map(str, args)], input=input, capture_output=True,
                          env=env, timeout=generous(timeout), cwd=cwd or REPO)
    proc.stdout = proc.stdout.decode("utf-8", errors="replace")
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    return proc


def assert_one_line_error(proc, *needles) -> str:
    """Exit code 2, exactly one line on stderr starting with 'error: ', no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


BUILD_SCRIPT = textwrap.dedent("""
    import json, sys
    from samedge.build import BuildOptions, build
    out, method, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    opts = BuildOptions(target={target!r}, k=k, method=method, only={only!r}, threads=1, force=True)
    result = build(opts, out, log=lambda m: None)
    print(json.dumps({{"experts": [e["name"] for e in result["merge"]["experts"]]}}))
""").format(target=TARGET, only=PINNED_EXPERTS)


def build_pinned(out: Path, env: dict, method: str = "linear", k: int = 2, timeout: float = 300):
    """Build the legal bundle from the pinned experts in a subprocess (the Python API, one thread)."""
    proc = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(out), method, str(k)], capture_output=True,
                          text=True, env=env, timeout=generous(timeout), cwd=REPO)
    return proc


OFFLINE_SITECUSTOMIZE = textwrap.dedent('''
    """Test harness: forbid every socket connection; report attempts and heavy imports at exit."""
    import atexit, json, os, socket, sys

    _attempts = []

    def _refuse(*args, **kwargs):
        _attempts.append(repr(args[1:] if args else kwargs)[:200])
        raise OSError(101, "network access forbidden by the offline test")

    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse

    @atexit.register
    def _report():
        out = os.environ.get("SAMEDGE_TEST_REPORT")
        if out:
            with open(out, "w") as f:
                json.dump({"attempts": _attempts,
                           "torch": "torch" in sys.modules,
                           "transformers": "transformers" in sys.modules,
                           "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE"),
                           "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE")}, f)
''')


def offline_environ(root: Path, env: dict, report: Path) -> dict:
    """``env`` plus a sitecustomize that forbids sockets and writes a report to ``report``."""
    site = root / "offline_site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(OFFLINE_SITECUSTOMIZE)
    return dict(env, PYTHONPATH=str(site) + os.pathsep + env.get("PYTHONPATH", ""), SAMEDGE_TEST_REPORT=str(report))


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())


def make_tiny_bundle(root: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """A real bundle (``root/bundle``) over a tiny random llama: 2 layers, SmolLM2's tokenizer, weights x5
    so that answers vary by prompt, GGUF f16, labels person/location/organization. Built in about a
    second (needs torch); its answers never parse as entities, so records differ in their counts."""
    import torch

    from samedge.converters.hf_to_gguf import convert
    from samedge.bundle import MANIFEST, MODEL, manifest
    from samedge.data.labels import make_label
    from samedge.files import hash_files
    from tests.tiny_models import make_tiny_llama

    model, tokenizer = make_tiny_llama(None, hidden=hidden, layers=2, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(5.0)
    model.save_pretrained(root / "hf", safe_serialization=True)
    tokenizer.save_pretrained(root / "hf")
    bundle = root / "bundle"
    bundle.mkdir()
    convert(root / "hf", bundle / MODEL, out_type="f16")
    labels = [make_label(n) for n in ("person", "location", "organization")]
    data = manifest(target={"name": "tiny"}, labels=labels, base={"name": "tiny", "base_id": "0" * 64}, selection={},
                    merge={}, quant="f16", files=hash_files(bundle, [MODEL]))
    (bundle / MANIFEST).write_text(json.dumps(data, indent=2))
    return bundle


def make_numpy_tiny_bundle(root: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, scale: float = 0.3) -> Path:
    """What ``make_tiny_bundle`` makes, without torch or transformers and in well under a second: a random
    llama (hidden 32, 2 layers, 4 heads / 2 KV heads, tied embeddings, f16) written straight to GGUF by
    numpy, with the packaged SmolLM2 GGUF's tokenizer fields copied over. Returns ``root/bundle``."""
    import numpy as np

    from samedge.converters.gguf_io import copy_fields, field_value, open_gguf, planned, write_gguf
    from samedge.base import packaged_gguf
    from samedge.bundle import MANIFEST, MODEL, manifest
    from samedge.data.labels import make_label
    from samedge.files import hash_files

    reader = open_gguf(packaged_gguf())
    vocab = int(field_value(reader, "llama.vocab_size"))
    heads, kv_heads, ffn = 4, 2, hidden * 2
    head_dim = hidden // heads
    rng = np.random.default_rng(seed)
    shapes = {"token_embd.weight": (vocab, hidden), "output_norm.weight": (hidden,)}
    for i in range(layers):
        shapes.update({f"blk.{i}.attn_norm.weight": (hidden,), f"blk.{i}.ffn_norm.weight": (hidden,),
                       f"blk.{i}.attn_q.weight": (hidden, hidden), f"blk.{i}.attn_k.weight": (kv_heads * head_dim, hidden),
                       f"blk.{i}.attn_v.weight": (kv_heads * head_dim, hidden),
                       f"blk.{i}.attn_output.weight": (hidden, hidden), f"blk.{i}.ffn_gate.weight": (ffn, hidden),
                       f"blk.{i}.ffn_up.weight": (ffn, hidden), f"blk.{i}.ffn_down.weight": (hidden, ffn)})
    values = {name: (np.ones(shape, np.float32) if len(shape) == 1 else
                     rng.normal(0, scale, size=shape).astype(np.float32)) for name, shape in shapes.items()}

    def metadata(writer) -> None:
        def hparams(w):
            w.add_file_type(1)  # f16
            w.add_context_length(1024)
            w.add_embedding_length(hidden)
            w.add_block_count(layers)
            w.add_feed_forward_length(ffn)
            w.add_head_count(heads)
            w.add_head_count_kv(kv_heads)
            w.add_rope_dimension_count(head_dim)
        copy_fields(reader, writer, overrides=hparams, skip={
            "llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
            "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
            "general.quantization_version"})

    bundle = root / "bundle"
    bundle.mkdir(parents=True)
    write_gguf(bundle / MODEL, "llama", metadata,
               [planned(name, shape, "f16", lambda name=name: values[name]) for name, shape in shapes.items()])
    labels = [make_label(n) for n in ("person", "location", "organization")]
    data = manifest(target={"name": "tiny"}, labels=labels, base={"name": "tiny", "base_id": "0" * 64}, selection={},
                    merge={}, quant="f16", files=hash_files(bundle, [MODEL]))
    (bundle / MANIFEST).write_text(json.dumps(data, indent=2))
    return bundle


# --- fixtures ----------------------------------------------------------------------
# Test modules import these fixtures by name, so pytest registers one definition per module; the
# module-level cache makes "once per session" true across modules (the expensive build runs once).

_SESSION: dict = {}


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict:
    """Environment for subprocesses: isolated $SAMEDGE_HOME, repo on the path."""
    if "env" not in _SESSION:
        _SESSION["env"] = cli_environ(isolated_home(tmp_path_factory.mktemp("home")))
    return _SESSION["env"]


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory, cli_env) -> Path:
    """The legal bundle (linear merge, k=2, pinned experts, q8_0), built once per session (~10-25 s).
    Linear rather than the default TIES to halve the build time on a busy 2-core box; the bundle is
    otherwise what `samedge build --target legal --k 2 --method linear` makes."""
    from samedge.library import Library

    if "bundle" in _SESSION:
        return _SESSION["bundle"]
    names = Library.open().names()
    missing = [n for n in PINNED_EXPERTS if n not in names]
    if missing:
        pytest.skip(f"shipped experts {missing} are not trained yet")
    out = tmp_path_factory.mktemp("bundles") / TARGET
    proc = build_pinned(out, cli_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1])["experts"] == list(PINNED_EXPERTS)
    _SESSION["bundle"] = out
    return out


@pytest.fixture(scope="session")
def real_extractor(real_bundle):
    """An Extractor on the session bundle: one thread, batches of 4."""
    from samedge.bundle import load_extractor

    if "extractor" not in _SESSION:
        _SESSION["extractor"] = load_extractor(real_bundle, threads=1, n_seq=4)
    return _SESSION["extractor"]
