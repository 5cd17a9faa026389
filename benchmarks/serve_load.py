"""`samedge serve` under load: N concurrent clients against the service, vs `Extractor.extract_many` on the same texts.

    nice -n 5 python benchmarks/serve_load.py                 # N = 1, 4, 16, 64; writes its BENCHMARKS.md section
    python benchmarks/serve_load.py --n 32 --clients 1,4 --no-write     # a quick check
    python benchmarks/serve_load.py --report-only             # rewrite the section from the last run

Texts: the first ``--n`` (400) CoNLL-2003 test sentences. Bundle: target legal, `samedge build --k 2
--method linear` over the pinned conll2003 + wnut17 experts, Q8_0 (benchmarks/corpus_scaling.py's, reused).
Rows, in one run (the load average is recorded with each):

  extract_many   a child process loads the bundle and runs ``Extractor.extract_many`` over the texts in
                 groups of 16 (what `samedge extract` does, and the service's --max-batch): the rate
                 without HTTP, queue or JSON
  clients_N      a fresh `samedge serve` process (same threads, --max-batch 16); N asyncio clients
                 (httpx, one keep-alive connection each) send one sentence per request, each client
                 sending its next one when answered, until all ``--n`` are done. Throughput, p50/p99
                 latency, errors, how the worker batched, the server's peak RSS (VmHWM), and whether
                 every record equals extract_many's

The clients run in this process on the same cores as the service (2 here), so their CPU counts
against it; compare the rows as ratios within one run. Resumable: rows are saved in
runs/benchmarks/serve_load.json as they finish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (WORK, State, child_failed, emit, fmt_load, isolated_home, load_average,  # noqa: E402
                               now, publish, run_child, table)

NAME = "serve_load"
STATE = WORK / f"{NAME}.json"
ART = WORK / NAME
BATCH = 16        # texts per extract_many call: samedge extract's DOCS_PER_BATCH and serve's --max-batch
N_SEQ = 8
DEFAULT_CLIENTS = (1, 4, 16, 64)


def texts_of(n: int) -> list[str]:
    import warnings

    from samedge.data.catalog import load_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = load_split("conll2003", "test")[:n]
    if len(docs) < n:
        raise SystemExit(f"conll2003 test has only {len(docs)} sentences")
    return [d["text"] for d in docs]


# --- the baseline: extract_many in a child ------------------------------------------------------

def child(spec: dict) -> None:
    from samedge.bundle import load_extractor

    texts = texts_of(spec["n"])
    ex = load_extractor(spec["bundle"], threads=spec["threads"], n_seq=N_SEQ)
    records = []
    t = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        records += ex.extract_many(texts[i:i + BATCH], ids=[str(j) for j in range(i, min(i + BATCH, len(texts)))])
    wall = time.perf_counter() - t
    Path(spec["out"]).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    emit({"wall_s": round(wall, 3), "docs_per_s": round(len(texts) / wall, 3)})


# --- the service under N clients -----------------------------------------------------------------------

def start_service(bundle: Path, threads: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "samedge", "serve", "--bundle", str(bundle), "--port", "0",
                             "--threads", str(threads), "--max-batch", str(BATCH), "--batch", str(N_SEQ),
                             "--queue", "1024", "--timeout", "3600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    lines = []
    while True:
        line = proc.stderr.readline().decode("utf-8", "replace")
        if not line:
            raise SystemExit("the service exited:\n" + "".join(lines))
        lines.append(line)
        m = re.search(r"listening on (http://\S+?:\d+)", line)
        if m:
            # Drain its log (one line per request) so that the pipe never fills.
            import threading
            threading.Thread(target=lambda: [None for _ in iter(proc.stderr.readline, b"")], daemon=True).start()
            return proc, m.group(1)


def wait_healthy(url: str, timeout: float = 600) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become healthy")


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


async def drive(url: str, texts: list[str], clients: int) -> dict:
    """``clients`` closed-loop clients over one shared list of texts; latencies and answers."""
    import httpx

    todo = iter(range(len(texts)))
    latencies, answers, errors = [], {}, []

    async def one(client):
        for i in todo:
            t = time.perf_counter()
            r = await client.post("/extract", json={"text": texts[i], "id": str(i)})
            latencies.append(time.perf_counter() - t)
            if r.status_code == 200:
                answers[i] = r.json()
            else:
                errors.append(r.status_code)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as client:
        await client.post("/extract", json={"text": "warm up."})
        t = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(clients)))
        wall = time.perf_counter() - t
    latencies.sort()
    return {"wall_s": round(wall, 3), "docs_per_s": round(len(texts) / wall, 3), "errors": len(errors),
            "error_codes": sorted(set(errors)), "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "answers": answers}


def clients_row(bundle: Path, texts: list[str], clients: int, threads: int, reference: list[dict]) -> dict:
    import httpx

    proc, url = start_service(bundle, threads)
    try:
        wait_healthy(url)
        got = asyncio.run(drive(url, texts, clients))
        stats = httpx.get(url + "/health", timeout=30).json()
        rss = vm_hwm_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
    finally:
        proc.kill()
    answers = got.pop("answers")
    same = sum(answers.get(i) == ref for i, ref in enumerate(reference))
    return dict(got, server_peak_rss_mb=rss, batches=stats["batches"], max_batch_requests=stats["max_batch_requests"],
                equal_records=same, exit_code=rc)


# --- report ------------------------------------------------------------------------------------------------

def report(data: dict) -> str:
    cfg, rows = data["config"], data["rows"]
    base = rows["extract_many"]
    m = data["machine"]
    lines = ["## Service under load (`samedge serve`, N concurrent clients)", "",
             f"Run {data['started']} to {data.get('finished', '?')}; command `{data.get('command', '?')}`; "
             f"{m['cores']} cores ({m['cpu']}); load average at each row's start below (other jobs share the "
             f"machine, so compare the rows as ratios). Texts: the first {cfg['n']} CoNLL-2003 test sentences, "
             f"one per request. Bundle: target legal, linear merge of the pinned conll2003 + wnut17 experts, Q8_0. "
             f"llama.cpp threads: {cfg['threads']} in the service and in the baseline; --max-batch {BATCH}, "
             f"n_seq {N_SEQ}. The clients (asyncio + httpx) run on the same cores as the service.", ""]
    header = ["row", "docs/s", "vs extract_many", "p50 ms", "p99 ms", "errors", "batches (largest)",
              "records equal", "peak RSS MB", "load at start"]
    out = [["`Extractor.extract_many`, groups of 16", f"{base['docs_per_s']:.2f}", "1.00", "", "", "", "",
            "(reference)", base["peak_rss_mb"], base["load"]]]
    for n in cfg["clients"]:
        r = rows.get(f"clients_{n}")
        if r is None:
            continue
        out.append([f"service, {n} client{'s' if n > 1 else ''}", f"{r['docs_per_s']:.2f}",
                    f"{r['docs_per_s'] / base['docs_per_s']:.2f}", r["p50_ms"], r["p99_ms"], r["errors"],
                    f"{r['batches']} ({r['max_batch_requests']})", f"{r['equal_records']}/{cfg['n']}",
                    r["server_peak_rss_mb"], r["load"]])
    lines += [table(header, out), "",
              "Peak RSS: the baseline child's VmHWM, and the service process's VmHWM read just before its "
              "SIGTERM (each row starts a fresh service). `batches`: how many `extract_many` calls the "
              "worker made for the row's requests (the warm-up request adds one); with one client every "
              "request is its own batch, with more the waiting ones run together (at most 16 texts). "
              "`records equal`: answers identical to extract_many's record for the same sentence; a sentence that "
              "ran in a batch of another size can differ (llama.cpp's batched greedy decoding can break a near-tie "
              "differently, as with `samedge extract --batch`); tests/test_serve.py checks equality exactly on a tiny "
              "model. A batch ends with its longest answer (up to 160 tokens), so small batches of a few clients "
              "can be slower than one client's batches of one."]
    exits = {r.get("exit_code") for k, r in rows.items() if k.startswith("clients_")}
    lines += ["", f"Every service exited with code {exits.pop()} after SIGTERM." if len(exits) == 1 else
              f"Service exit codes after SIGTERM: {sorted(exits)}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="CoNLL-2003 test sentences (requests per row)")
    ap.add_argument("--clients", default=",".join(map(str, DEFAULT_CLIENTS)), help="comma-separated client counts")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (service and baseline)")
    ap.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last saved run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.report_only:
        data = State.last(STATE)
        if not data or not data.get("rows", {}).get("extract_many"):
            raise SystemExit(f"no run in {STATE}")
        return publish(NAME, report(data), write=not args.no_write)
    clients = [int(c) for c in args.clients.split(",")]
    state = State(STATE, {"n": args.n, "clients": clients, "threads": args.threads}, fresh=args.fresh)
    state.data["command"] = "python benchmarks/serve_load.py" + "".join(
        f" --{k} {v}" for k, v in (("n", args.n), ("clients", args.clients), ("threads", args.threads))
        if str(v) != str(ap.get_default(k)))
    isolated_home()
    from benchmarks.corpus_scaling import ensure_bundle
    bundle = ensure_bundle()
    texts = texts_of(args.n)
    ART.mkdir(parents=True, exist_ok=True)
    ref_path = ART / "extract_many.jsonl"
    if not state.has("extract_many") or not ref_path.exists():
        load = fmt_load(load_average())
        print(f"[{now()}] extract_many, load {load} ...", flush=True)
        spec = {"bundle": str(bundle), "n": args.n, "threads": args.threads, "out": str(ref_path)}
        run = run_child([sys.executable, __file__, "--child", json.dumps(spec)], env={"OMP_NUM_THREADS": "1"})
        if run["rc"] != 0:
            raise SystemExit(child_failed(run))
        state.put("extract_many", dict(run["result"], peak_rss_mb=run["peak_rss_mb"], load=load))
        print(f"    {run['result']['docs_per_s']:.2f} docs/s", flush=True)
    reference = [json.loads(line) for line in ref_path.read_text(encoding="utf-8").splitlines()]
    for n in clients:
        key = f"clients_{n}"
        if state.has(key):
            continue
        load = fmt_load(load_average())
        print(f"[{now()}] {n} clients, load {load} ...", flush=True)
        row = dict(clients_row(bundle, texts, n, args.threads, reference), load=load)
        state.put(key, row)
        print(f"    {row['docs_per_s']:.2f} docs/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
              f"{row['errors']} errors, {row['equal_records']}/{args.n} equal", flush=True)
    state.finish()
    publish(NAME, report(state.data), write=not args.no_write)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
