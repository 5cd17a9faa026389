"""extract-corpus: 1,000 documents through a local Ray instance and a process pool, against samedge extract.

The bundle is a tiny random llama (hidden 32, 2 layers, SmolLM2's tokenizer, weights x5 so that answers
vary by prompt) converted to GGUF f16, with short answers and one thread per worker, so the whole
module runs in well under two minutes on a busy 2-core box. The tiny model's answers differ by prompt
but never parse as entities, so its records compare ids, texts and counts; the `real` test at the end
compares non-empty entities with the shipped experts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bundle_fixtures import FOUND_SENTENCES, REPO, assert_one_line_error, make_tiny_bundle, run_cli
from tests.bundle_fixtures import cli_env, real_bundle  # noqa: F401
from tests.timeouts import generous

pytest.importorskip("ray")
pytest.importorskip("torch")

ANSWER_TOKENS = 12
N_JSONL, N_TEXT = 608, 392  # 608 = 38 batches of 16: samedge extract's groups never straddle the two units
BAD_NAME = "0200_bad.txt"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """1,000 short documents: 608 in a JSONL file, 392 as text files, plus one text file of invalid UTF-8."""
    rng = random.Random(7)
    words = ("Alice Smith met Bob Jones in Paris and Berlin on Monday ; Acme Corp hired Carla Ruiz from Rome "
             "the court ruled that").split()
    root = tmp_path_factory.mktemp("corpus") / "corpus"
    (root / "texts").mkdir(parents=True)

    def sentence():
        return " ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) + "."

    with open(root / "a_docs.jsonl", "w", encoding="utf-8") as f:
        for i in range(N_JSONL):
            f.write(json.dumps({"id": f"j{i:04d}", "text": sentence()}) + "\n")
    for i in range(N_TEXT):
        (root / "texts" / f"{i:04d}.txt").write_text(sentence(), encoding="utf-8")
    (root / "texts" / BAD_NAME).write_bytes(b"Caf\xe9 Ruiz in Paris")
    return root


@pytest.fixture(scope="module")
def reference(tiny_bundle, corpus, tmp_path_factory) -> list[str]:
    """What `samedge extract` writes for the corpus (the Python API behind it), one JSONL line per record."""
    from samedge.extract.api import run_extract
    from samedge.bundle import load_extractor

    out = tmp_path_factory.mktemp("reference") / "records.jsonl"
    extractor = load_extractor(tiny_bundle, threads=1, n_seq=8, answer_tokens=ANSWER_TOKENS)
    summary = run_extract([corpus], extractor=extractor, output=out, progress=False)
    extractor.engine.close()
    assert summary["documents"] == N_JSONL + N_TEXT
    assert len(summary["failures"]) == 1 and "invalid UTF-8" in summary["failures"][0]
    return out.read_text(encoding="utf-8").splitlines()


def shard_lines(out: Path) -> list[str]:
    return [line for p in sorted(out.glob("shard-*.jsonl")) for line in p.read_text(encoding="utf-8").splitlines()]


def corpus_args(tiny_bundle, **kw) -> dict:
    args = {"bundle": tiny_bundle, "num_actors": 2, "threads": 1, "answer_tokens": ANSWER_TOKENS, "shard_size": 64,
            "progress": False}
    args.update(kw)
    return args


def check_errors(out: Path) -> None:
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 1, errors
    assert errors[0]["id"].endswith(BAD_NAME) and "invalid UTF-8 at byte offset 3" in errors[0]["reason"]


def test_ray_records_equal_samedge_extract(tiny_bundle, corpus, reference, tmp_path):
    from samedge.corpus import run_corpus

    out = tmp_path / "out"
    summary = run_corpus([corpus], out, engine="ray", num_cpus=3, **corpus_args(tiny_bundle))
    assert summary["totals"] == {"shards": 17, "documents": 1000, "entities": 0, "failures": 1}
    lines = shard_lines(out)
    assert lines == reference
    ids = [json.loads(line)["id"] for line in lines]
    assert len(set(ids)) == 1000 and not any(i.endswith(BAD_NAME) for i in ids)
    check_errors(out)


def test_local_engine_writes_the_same_shards(tiny_bundle, corpus, reference, tmp_path):
    from samedge.corpus import run_corpus

    out = tmp_path / "out"
    summary = run_corpus([corpus], out, engine="local", **corpus_args(tiny_bundle))
    assert summary["totals"]["documents"] == 1000 and summary["totals"]["shards"] == 17
    assert shard_lines(out) == reference
    check_errors(out)

    # A rerun finds every shard complete and does nothing.
    again = run_corpus([corpus], out, engine="local", **corpus_args(tiny_bundle))
    assert again["skipped_shards"] == 17 and again["this_run"]["shards"] == 0
    assert shard_lines(out) == reference and again["totals"] == summary["totals"]


def test_rerun_after_a_kill_mid_job_completes_without_duplicates(tiny_bundle, corpus, reference, tmp_path, cli_env):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "samedge", "extract-corpus", corpus, "-o", out, "--bundle", tiny_bundle,
            "--engine", "ray", "--num-actors", "2", "--num-cpus", "3", "--answer-tokens", str(ANSWER_TOKENS),
            "--shard-size", "16"]
    env = dict(cli_env, OMP_NUM_THREADS="1")
    # Its own session, so that the kill takes the local Ray instance (raylet, workers) with it.
    proc = subprocess.Popen([str(a) for a in args], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + generous(120)
        while time.time() < deadline and proc.poll() is None and len(list((out / ".parts").glob("shard-*.json"))) < 4:
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    done_before = len(list((out / ".parts").glob("shard-*.json")))
    assert 4 <= done_before < 63, done_before  # 38 + 25 shards in all

    rerun = run_cli([a for a in args[3:]] + ["--json"], env, timeout=240)  # run_cli scales it by the load
    assert rerun.returncode == 2, rerun.stderr[-2000:]  # 2: one document failed (listed in errors.jsonl)
    summary = json.loads(rerun.stdout)
    assert summary["skipped_shards"] >= done_before
    assert summary["totals"] == {"shards": 63, "documents": 1000, "entities": 0, "failures": 1}
    assert summary["this_run"]["shards"] == 63 - summary["skipped_shards"]
    assert not list(out.glob("*.incomplete")) and not list((out / ".parts").glob("*.incomplete"))
    assert shard_lines(out) == reference  # every document once, in order, as samedge extract writes it
    check_errors(out)

    # Once more: every shard is done, so every file's rows are filtered out (empty blocks in the shuffle).
    from samedge.corpus import run_corpus
    again = run_corpus([corpus], out, engine="ray", num_cpus=3, **corpus_args(tiny_bundle, shard_size=16))
    assert again["skipped_shards"] == 63 and again["this_run"]["shards"] == 0
    assert shard_lines(out) == reference


def test_parquet_in_and_out(tiny_bundle, tmp_path):
    """Parquet with a text column (and ids) in, Parquet shards out: the records of the same texts as JSONL."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from samedge.extract.api import run_extract
    from samedge.bundle import load_extractor
    from samedge.corpus import run_corpus

    texts = [f"Alice Smith met Bob number {i} in Paris." for i in range(40)] + [None]
    ids = [f"p{i}" for i in range(41)]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": ids, "text": texts}), tmp_path / "in" / "docs.parquet")
    with open(tmp_path / "docs.jsonl", "w") as f:
        for doc_id, text in zip(ids[:40], texts[:40]):
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    extractor = load_extractor(tiny_bundle, threads=1, answer_tokens=ANSWER_TOKENS)
    run_extract([tmp_path / "docs.jsonl"], extractor=extractor, output=tmp_path / "ref.jsonl", progress=False)
    extractor.engine.close()
    expected = [json.loads(line) for line in (tmp_path / "ref.jsonl").read_text().splitlines()]

    out = tmp_path / "out"
    summary = run_corpus([tmp_path / "in"], out, engine="local", fmt="parquet", **corpus_args(tiny_bundle, num_actors=1))
    assert summary["totals"]["documents"] == 40 and summary["totals"]["failures"] == 1
    rows = [r for p in sorted(out.glob("shard-*.parquet")) for r in pq.read_table(p).to_pylist()]
    got = [{"id": r["id"], "text": r["text"], "entities": r["entities"], "counts": json.loads(r["counts"])}
           for r in rows]
    assert got[:40] == expected[:40] and len(got) == 40
    assert "p40" not in {r["id"] for r in rows}
    assert "'text' is not a string" in (out / "errors.jsonl").read_text()


def test_a_rerun_over_other_inputs_or_settings_is_refused(tiny_bundle, tmp_path):
    from samedge.corpus import run_corpus
    from samedge.errors import UserError

    (tmp_path / "a.txt").write_text("Alice met Bob.")
    (tmp_path / "b.txt").write_text("Carla went to Rome.")
    out = tmp_path / "out"
    run_corpus([tmp_path / "a.txt"], out, engine="local", **corpus_args(tiny_bundle, num_actors=1, shard_size=16))
    with pytest.raises(UserError, match="other inputs"):
        run_corpus([tmp_path / "a.txt", tmp_path / "b.txt"], out, engine="local",
                   **corpus_args(tiny_bundle, num_actors=1, shard_size=16))
    with pytest.raises(UserError, match="other shard_size"):
        run_corpus([tmp_path / "a.txt"], out, engine="local", **corpus_args(tiny_bundle, num_actors=1, shard_size=32))
    with pytest.raises(UserError, match="multiple of 16"):
        run_corpus([tmp_path / "a.txt"], tmp_path / "o2", engine="local", **corpus_args(tiny_bundle, shard_size=10))


def test_user_mistakes_are_one_line_errors(tiny_bundle, tmp_path, cli_env):
    (tmp_path / "a.txt").write_text("Alice met Bob.")
    # Ray missing: a sitecustomize that makes `import ray` fail.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None\n")
    no_ray = dict(cli_env, PYTHONPATH=f"{site}{os.pathsep}{cli_env['PYTHONPATH']}")
    proc = run_cli(["extract-corpus", tmp_path / "a.txt", "-o", tmp_path / "out", "--bundle", tiny_bundle], no_ray)
    assert_one_line_error(proc, "pip install 'samedge[ray]'")
    proc = run_cli(["extract-corpus", tmp_path / "a.txt", "-o", tmp_path / "out", "--bundle", tiny_bundle,
                    "--engine", "local", "--address", "auto"], cli_env)
    assert_one_line_error(proc, "--address")
    proc = run_cli(["extract-corpus", tmp_path / "a.txt", "-o", tmp_path / "out", "--bundle", tmp_path / "nope",
                    "--engine", "local"], cli_env)
    assert_one_line_error(proc, "does not exist")
    assert not (tmp_path / "out").exists()


@pytest.mark.real
def test_real_model_ray_records_equal_samedge_extract(real_bundle, tmp_path):
    """The shipped experts (entities found) through Ray: the records of samedge extract, entities included."""
    from samedge.extract.api import run_extract
    from samedge.bundle import load_extractor
    from samedge.corpus import run_corpus

    (tmp_path / "in").mkdir()
    for i, sentence in enumerate(FOUND_SENTENCES * 2):
        (tmp_path / "in" / f"{i:02d}.txt").write_text(sentence, encoding="utf-8")
    extractor = load_extractor(real_bundle, threads=1, n_seq=8)
    run_extract([tmp_path / "in"], extractor=extractor, output=tmp_path / "ref.jsonl", progress=False)
    extractor.engine.close()
    reference = (tmp_path / "ref.jsonl").read_text(encoding="utf-8").splitlines()
    summary = run_corpus([tmp_path / "in"], tmp_path / "out", bundle=real_bundle, engine="ray", num_actors=2,
                         num_cpus=3, threads=1, shard_size=16, progress=False)
    assert summary["totals"]["documents"] == 16 and summary["totals"]["entities"] > 0
    assert shard_lines(tmp_path / "out") == reference
