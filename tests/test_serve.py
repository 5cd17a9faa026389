"""`samedge serve`: the HTTP service, over loopback only.

In-process tests run the Starlette app on a real uvicorn server in a thread (``served``), so that
concurrent clients, slow clients and timeouts go through real sockets; the lifecycle tests run
`python -m samedge serve` in a subprocess (SIGTERM with a request in flight, SIGKILL then a restart
on the same port, a bundle that fails to load). The model is a tiny random llama bundle
(tests/bundle_fixtures.py::make_numpy_tiny_bundle: real llama.cpp, SmolLM2's tokenizer, built by numpy
in a few seconds, no torch); tests that need the worker held at a given point use ``GatedExtractor``,
a stand-in that waits on an event.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from tests.bundle_fixtures import REPO, assert_one_line_error, cli_env, make_numpy_tiny_bundle  # noqa: E402,F401

ANSWER_TOKENS = 12  # short answers keep the tiny model fast; the reference records use the same
WORDS = ("Alice Smith met Bob Jones in Paris and Berlin on Monday ; Acme Corp hired Carla Ruiz from Rome "
         "the court ruled that").split()
T = 60  # generous client timeout (seconds) for a loaded machine


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) + "." for _ in range(n)]


# --- fixtures and helpers --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_numpy_tiny_bundle(tmp_path_factory.mktemp("serve_bundle"))


def tiny_load(bundle):
    from samedge.bundle import load_extractor
    return functools.partial(load_extractor, bundle, threads=1, n_seq=8, answer_tokens=ANSWER_TOKENS)


@pytest.fixture(scope="module")
def cli_records(tiny_bundle, tmp_path_factory):
    """``records(texts, ids)``: what `samedge extract --format jsonl` writes for them (run_extract, the function
    behind the CLI, over a JSONL file), as JSONL lines. Cached per text (a text's record does not depend
    on the batch it ran in)."""
    from samedge.extract.api import run_extract

    extractor = tiny_load(tiny_bundle)()
    cache: dict[str, dict] = {}
    folder = tmp_path_factory.mktemp("cli_records")

    def records(texts, ids) -> list[str]:
        todo = sorted(set(texts) - set(cache))
        if todo:
            inp, out = folder / "in.jsonl", folder / "out.jsonl"
            inp.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(todo)))
            summary = run_extract([inp], extractor=extractor, output=out, progress=False)
            assert summary["documents"] == len(todo) and not summary["failures"]
            for text, line in zip(todo, out.read_text(encoding="utf-8").splitlines()):
                cache[text] = json.loads(line)
        from samedge.extract.api import render
        return [render(dict(cache[t], id=i), "jsonl") for t, i in zip(texts, ids)]

    yield records
    extractor.engine.close()


@contextlib.contextmanager
def served(app):
    """The app on a real uvicorn server in a thread, on a free loopback port; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + T
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(T)
        sock.close()
        assert not thread.is_alive()


def wait_for(predicate, what: str, timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def wait_healthy(url: str, timeout: float = T) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(url + "/health", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not become healthy"
        time.sleep(0.05)


class GatedExtractor:
    """A stand-in Extractor: records each batch; ``extract_many`` waits for ``gate`` (when cleared) first."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[list[str]] = []
        self.started = threading.Event()

    def extract_many(self, texts, ids=None):
        self.batches.append(list(texts))
        self.started.set()
        assert self.gate.wait(T)
        return [{"id": i, "text": t, "entities": [], "counts": {"chunks": 1}} for t, i in zip(texts, ids)]


def gated_app(**kw):
    from samedge.serve.app import create_app
    fake = GatedExtractor()
    return create_app(lambda: fake, **kw), fake


def post(url, payload=None, **kw):
    kw.setdefault("timeout", T)
    if payload is not None:
        kw["json"] = payload
    return httpx.post(url + "/extract", **kw)


# --- /health, /info, /extract ----------------------------------------------------------------------

def test_health_is_503_while_loading_then_200(tiny_bundle):
    from samedge.serve.app import create_app

    release = threading.Event()

    def slow_load():
        assert release.wait(T)
        return tiny_load(tiny_bundle)()

    app = create_app(slow_load)
    with served(app) as url:
        r = httpx.get(url + "/health", timeout=T)
        assert r.status_code == 503 and r.json()["status"] == "loading" and r.headers["retry-after"]
        r = post(url, {"text": "Alice met Bob."})
        assert r.status_code == 503 and r.json() == {"error": "the model is loading"}
        release.set()
        health = wait_healthy(url)
        assert health["status"] == "ok" and health["queued"] == 0
        assert post(url, {"text": "Alice met Bob."}).status_code == 200


def test_extract_single_and_batch_equal_the_cli_records(tiny_bundle, cli_records):
    from samedge.serve.app import create_app

    texts = sentences(12, seed=1) + ["", "Café Zürich 東京 🙂 ruled.", "   \n\t "]
    ids = [f"doc-{i}" for i in range(len(texts))]
    expected = [json.loads(line) for line in cli_records(texts, ids)]
    with served(create_app(tiny_load(tiny_bundle))) as url:
        wait_healthy(url)
        r = post(url, {"text": texts[0], "id": "doc-0"})
        assert r.status_code == 200 and r.json() == expected[0]
        assert post(url, {"text": texts[1]}).json() == dict(expected[1], id="0")  # the default id, as extract_many
        r = post(url, {"texts": texts, "ids": ids})
        assert r.status_code == 200 and r.json() == {"records": expected}
        assert post(url, {"texts": texts[:3]}).json()["records"] == [dict(e, id=str(i)) for i, e in enumerate(expected[:3])]
        # NDJSON: byte for byte the lines `samedge extract --format jsonl` writes.
        r = post(url, {"texts": texts, "ids": ids}, headers={"Accept": "application/x-ndjson"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        assert r.content == "".join(cli_records(texts, ids)).encode("utf-8")


def test_info_shows_the_bundle(tiny_bundle):
    from samedge.serve.app import bundle_info, create_app

    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    app = create_app(lambda: GatedExtractor(), info=bundle_info(tiny_bundle))
    with served(app) as url:
        info = httpx.get(url + "/info", timeout=T).json()
    assert info["target"] == {"name": "tiny"} and info["quant"] == "f16"
    assert [lab["name"] for lab in info["labels"]] == ["person", "location", "organization"]
    assert info["sha256"]["model.gguf"] == manifest["files"]["model.gguf"] and len(info["sha256"]["model.gguf"]) == 64
    assert info["experts"] == []


def test_concurrent_clients_are_batched():
    app, fake = gated_app(batch_size=16)
    batcher = app.state.batcher
    with served(app) as url:
        wait_healthy(url)
        fake.gate.clear()
        with ThreadPoolExecutor(11) as pool:
            first = pool.submit(post, url, {"text": "first", "id": "first"})
            assert fake.started.wait(T)  # the worker holds "first"; the next ten wait in the queue
            futures = [pool.submit(post, url, {"text": f"sentence {i}.", "id": f"c{i}"}) for i in range(10)]
            wait_for(lambda: batcher.queued == 10, "ten queued requests")
            fake.gate.set()
            answers = [f.result() for f in futures]
            assert first.result().status_code == 200
    assert [r.status_code for r in answers] == [200] * 10
    assert [r.json()["id"] for r in answers] == [f"c{i}" for i in range(10)]
    assert [r.json()["text"] for r in answers] == [f"sentence {i}." for i in range(10)]
    # Ten requests cost one batch of ten texts, not ten batches.
    assert len(fake.batches) == 2 and fake.batches[0] == ["first"], fake.batches
    assert sorted(fake.batches[1]) == sorted(f"sentence {i}." for i in range(10))
    assert batcher.stats()["max_batch_requests"] == 10


def test_batches_stop_at_the_batch_size():
    app, fake = gated_app(batch_size=4)
    with served(app) as url:
        wait_healthy(url)
        fake.gate.clear()
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(post, url, {"text": "first"})
            assert fake.started.wait(T)
            futures = [pool.submit(post, url, {"texts": [f"t{i}a", f"t{i}b"]}) for i in range(5)]  # 10 texts
            wait_for(lambda: app.state.batcher.queued == 5, "five queued requests")
            fake.gate.set()
            assert all(f.result().status_code == 200 for f in futures) and first.result().status_code == 200
    sizes = [len(b) for b in fake.batches]
    assert sizes == [1, 4, 4, 2], sizes  # whole requests, at most 4 texts a batch


# --- limits -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_url():
    from samedge.serve.app import create_app
    with served(create_app(lambda: GatedExtractor(), max_body=1000)) as url:
        wait_healthy(url)
        yield url


def test_body_over_max_body_is_413(fake_url):
    r = post(fake_url, {"text": "x" * 2000})
    assert r.status_code == 413
    assert r.json() == {"error": f"request body is {len(r.request.content)} bytes; the limit is 1000 bytes (--max-body)"}

    def chunks():  # no Content-Length: chunked transfer, counted while it streams
        for _ in range(30):
            yield b"x" * 100

    r = httpx.post(fake_url + "/extract", content=chunks(), timeout=T)
    assert r.status_code == 413 and r.json() == {"error": "request body exceeds the limit of 1000 bytes (--max-body)"}
    assert post(fake_url, {"text": "x" * 900}).status_code == 200  # under the limit


BAD = [
    (b'{"text": "Alice', "not valid JSON: Unterminated string"),
    (b"", "not valid JSON: Expecting value at line 1 column 1"),
    (b'["Alice"]', "must be a JSON object, not a list"),
    (b'{"txt": "Alice"}', "unknown field 'txt'"),
    (b'{}', "missing field 'text' (a string) or 'texts' (a list of strings)"),
    (b'{"text": 5}', "'text' must be a string, not a number"),
    (b'{"text": "a", "id": 3}', "'id' must be a string, not a number"),
    (b'{"texts": "Alice"}', "'texts' must be a list of strings, not a string"),
    (b'{"texts": ["a", null]}', "'texts'[1] must be a string, not null"),
    (b'{"texts": []}', "'texts' is empty"),
    (b'{"texts": ["a", "b"], "ids": ["x"]}', "'ids' has 1 items but 'texts' has 2"),
    (b'{"text": "a", "texts": ["b"]}', "either 'text' or 'texts', not both"),
    (b'{"text": "Caf\xe9"}', "not valid UTF-8 (byte 0xe9 at byte offset 13)"),
    (b'{"text": "ok \xff\xfe"}', "not valid UTF-8 (byte 0xff at byte offset 13)"),
    (b'{"text": "lone \\ud800 surrogate"}', "'text' is not valid Unicode: lone surrogate '\\ud800' at character 5"),
]


def test_bad_requests_are_400_naming_the_problem(fake_url):
    for body, needle in BAD:
        r = httpx.post(fake_url + "/extract", content=body, headers={"Content-Type": "application/json"}, timeout=T)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert set(r.json()) == {"error"} and needle in r.json()["error"], (body, r.json())


def test_unknown_route_and_method_are_json_errors(fake_url):
    r = httpx.get(fake_url + "/nope", timeout=T)
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = httpx.get(fake_url + "/extract", timeout=T)
    assert r.status_code == 405 and set(r.json()) == {"error"}


def test_bearer_token_is_required_and_never_logged(caplog):
    import logging

    from samedge.serve.app import create_app

    token = "s3cret-token-0123456789"
    secret_text = "Zaphod Beeblebrox visited Magrathea."
    caplog.set_level(logging.INFO, logger="samedge.serve")
    with served(create_app(lambda: GatedExtractor(), token=token)) as url:
        wait_healthy(url)  # /health needs no token (liveness probes)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                        {"Authorization": f"Bearer {token}x"}, {"Authorization": token}):
            r = post(url, {"text": secret_text}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), headers
            assert "bearer token" in r.json()["error"]
            assert httpx.get(url + "/info", headers=headers, timeout=T).status_code == 401
        good = {"Authorization": f"Bearer {token}"}
        assert post(url, {"text": secret_text}, headers=good).status_code == 200
        assert httpx.get(url + "/info", headers=good, timeout=T).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "samedge.serve"]
    assert any(re.fullmatch(r"POST /extract 401 [\d.]+ ms texts=0", line) for line in lines), lines
    assert any(re.fullmatch(r"POST /extract 200 [\d.]+ ms texts=1", line) for line in lines), lines
    assert not any(token in line or "Zaphod" in line or "s3cret" in line for line in lines)


def test_full_queue_is_503_with_retry_after():
    app, fake = gated_app(max_queue=1)
    batcher = app.state.batcher
    with served(app) as url:
        wait_healthy(url)
        fake.gate.clear()
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(post, url, {"text": "running"})
            assert fake.started.wait(T)
            queued = pool.submit(post, url, {"text": "queued"})
            wait_for(lambda: batcher.queued == 1, "one queued request")
            r = post(url, {"text": "refused"})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json() == {"error": "the queue is full (1 requests waiting); retry later"}
            fake.gate.set()
            assert running.result().status_code == 200 and queued.result().status_code == 200
    assert ["refused"] not in fake.batches


def test_timeout_is_504_and_queued_work_is_cancelled():
    app, fake = gated_app(timeout=1.0)
    batcher = app.state.batcher
    with served(app) as url:
        wait_healthy(url)
        fake.gate.clear()
        with ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            running = pool.submit(post, url, {"text": "running"})
            assert fake.started.wait(T)
            queued = pool.submit(post, url, {"text": "never run"})
            r1, r2 = running.result(), queued.result()
            elapsed = time.monotonic() - started
        assert r1.status_code == 504 and r1.json() == {"error": "extraction did not finish within 1 s (--timeout)"}
        assert r2.status_code == 504
        assert elapsed < 10
        fake.gate.set()  # the running batch finishes; its result is dropped
        wait_for(lambda: batcher.running == 0, "the worker to finish")
        assert post(url, {"text": "after"}).status_code == 200
    assert fake.batches == [["running"], ["after"]]  # the timed-out queued request never ran
    assert batcher.cancelled == 1


def test_a_timed_out_request_larger_than_a_batch_stops_after_its_slice():
    app, fake = gated_app(timeout=1.0, batch_size=4)
    with served(app) as url:
        wait_healthy(url)
        fake.gate.clear()
        texts = [f"t{i}" for i in range(12)]
        with ThreadPoolExecutor(1) as pool:
            big = pool.submit(post, url, {"texts": texts})
            assert fake.started.wait(T)
            assert big.result().status_code == 504
        fake.gate.set()
        wait_for(lambda: app.state.batcher.cancelled == 1, "the rest of the request to be dropped")
        assert post(url, {"texts": texts}).json()["records"] == [
            {"id": str(i), "text": t, "entities": [], "counts": {"chunks": 1}} for i, t in enumerate(texts)]
    assert fake.batches == [texts[:4], texts[:4], texts[4:8], texts[8:]]  # slices of 4; the first request's rest never ran


def test_a_slow_client_does_not_block_others():
    app, fake = gated_app()
    with served(app) as url:
        wait_healthy(url)
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"text": "slowly sent"}).encode()
        slow = socket.create_connection(("127.0.0.1", port), timeout=T)
        slow.sendall(b"POST /extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        others = []
        for i, byte in enumerate(body):  # one byte every 50 ms (about a second in all) ...
            slow.sendall(bytes([byte]))
            if i % 8 == 0:  # ... while other clients are answered at once
                t = time.monotonic()
                r = post(url, {"text": f"fast {i}"})
                others.append((r.status_code, time.monotonic() - t))
            time.sleep(0.05)
        answer = b""
        while b"slowly sent" not in answer:
            chunk = slow.recv(65536)
            assert chunk, answer
            answer += chunk
        slow.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert [s for s, _ in others] == [200] * len(others) and len(others) >= 3
    assert max(t for _, t in others) < 5, others


def test_a_body_not_sent_in_time_is_408():
    app, _ = gated_app(timeout=1.0)
    with served(app) as url:
        wait_healthy(url)
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=T) as stalled:
            stalled.sendall(b"POST /extract HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\"")
            started = time.monotonic()
            answer = stalled.recv(65536)
            elapsed = time.monotonic() - started
            while not answer.endswith(b"}"):
                chunk = stalled.recv(65536)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert answer.endswith(b'{"error":"request body not received within 1 s"}'), answer
        assert 0.5 < elapsed < 10


# --- many clients --------------------------------------------------------------------------------------

def test_1000_requests_from_16_clients(tiny_bundle, cli_records):
    from samedge.serve.app import create_app

    pool_texts = sentences(60, seed=3)
    rng = random.Random(5)
    texts = [rng.choice(pool_texts) for _ in range(1000)]
    ids = [f"r{i:04d}" for i in range(1000)]
    expected = [json.loads(line) for line in cli_records(texts, ids)]
    app = create_app(tiny_load(tiny_bundle), batch_size=16, max_queue=64)
    got: dict[int, tuple[int, dict]] = {}

    def client(k: int):
        with httpx.Client(base_url=url, timeout=T) as c:
            for i in range(k, 1000, 16):
                r = c.post("/extract", json={"text": texts[i], "id": ids[i]})
                got[i] = (r.status_code, r.json())

    with served(app) as url:
        wait_healthy(url)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(client, range(16)))
        elapsed = time.monotonic() - started
        stats = app.state.batcher.stats()
    errors = [(i, s) for i, (s, _) in got.items() if s != 200]
    assert len(got) == 1000 and not errors, errors[:5]
    assert [got[i][1] for i in range(1000)] == expected
    assert stats["max_batch_requests"] > 1 and stats["batches"] < 1000, stats
    print(f"\n1000 requests, 16 clients: {elapsed:.1f} s, {stats['batches']} batches "
          f"(largest {stats['max_batch_requests']} requests)")


# --- the command: lifecycle ------------------------------------------------------------------------------

def start_service(bundle, env, *args, port: int = 0, cwd=None):
    proc = subprocess.Popen([sys.executable, "-m", "samedge", "serve", "--bundle", str(bundle), "--port", str(port),
                             "--threads", "1", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd or REPO)
    lines = []
    deadline = time.monotonic() + T
    while True:  # the first log line says where it listens
        line = proc.stderr.readline().decode("utf-8", "replace")
        lines.append(line)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            break
        assert line and time.monotonic() < deadline, "".join(lines)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(lambda: proc.stderr.readline().decode("utf-8", "replace"), "")),
                     daemon=True).start()
    return proc, f"http://127.0.0.1:{m.group(1)}", log


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tiny_bundle, cli_env, tmp_path):
    proc, url, log = start_service(tiny_bundle, cli_env, cwd=tmp_path)
    try:
        wait_healthy(url)
        texts = sentences(48, seed=9)  # default answer length: a few seconds of work for the tiny model
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(post, url, {"texts": texts})
            wait_for(lambda: httpx.get(url + "/health", timeout=T).json()["running"] > 0, "the batch to start")
            proc.send_signal(signal.SIGTERM)
            r = in_flight.result()
        assert proc.wait(T) == 0
    finally:
        proc.kill()
    assert r.status_code == 200 and [rec["text"] for rec in r.json()["records"]] == texts
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=5)
    text = "".join(log)
    assert "Traceback" not in text and "stopped" in text, text
    assert re.search(r"POST /extract 200 [\d.]+ ms texts=48", text), text
    assert os.listdir(tmp_path) == []  # no pid or lock file


def test_sigkill_then_restart_on_the_same_port(tiny_bundle, cli_env, tmp_path):
    proc, url, _ = start_service(tiny_bundle, cli_env, cwd=tmp_path)
    port = int(url.rsplit(":", 1)[1])
    try:
        wait_healthy(url)
        with httpx.Client(base_url=url, timeout=T) as c:  # a keep-alive connection open at the kill
            assert c.post("/extract", json={"text": "Alice met Bob."}).status_code == 200
            proc.send_signal(signal.SIGKILL)
            proc.wait(T)
    finally:
        proc.kill()
    assert os.listdir(tmp_path) == []
    again, url2, _ = start_service(tiny_bundle, cli_env, port=port, cwd=tmp_path)
    try:
        assert url2 == url
        wait_healthy(url)
        assert post(url, {"text": "Alice met Bob."}).status_code == 200
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(T) == 0


def test_a_bundle_that_fails_to_load_is_one_line_exit_2(tiny_bundle, cli_env, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_bundle, damaged)
    with open(damaged / "model.gguf", "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 1]))
    proc = subprocess.run([sys.executable, "-m", "samedge", "serve", "--bundle", str(damaged), "--port", "0"],
                          capture_output=True, text=True, env=cli_env, timeout=T, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "sha256 mismatch" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_bundle_and_port_in_use_are_one_line_errors(tiny_bundle, cli_env, tmp_path):
    from tests.bundle_fixtures import run_cli

    assert_one_line_error(run_cli(["serve", "--bundle", tmp_path / "nope"], cli_env, timeout=T), "does not exist")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert_one_line_error(run_cli(["serve", "--bundle", tiny_bundle, "--port", port], cli_env, timeout=T),
                              f"cannot listen on 127.0.0.1:{port}", "in use")
    token = tmp_path / "token"
    token.write_text("\n")
    assert_one_line_error(run_cli(["serve", "--bundle", tiny_bundle, "--token-file", token], cli_env, timeout=T),
                          "the token file is empty")
