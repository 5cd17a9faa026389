"""Shared helpers for the benchmarks: child processes with their peak RSS, machine load,
resumable result state, tables, and the BENCHMARKS.md section writer.

Every measurement that reports memory runs in its own child process (``run_child``). Its peak
RSS is the kernel's high-water mark of the child's own address space (``VmHWM`` in
/proc/self/status, read by the child at exit: ``emit`` or ``module_argv``'s wrapper), so it
counts everything the process mapped and touched, imports included, and nothing of the
parent's. (``getrusage``/``wait4``'s ``ru_maxrss`` is no good here: Linux carries the forking
parent's RSS over into the child's figure at exec.)

Timings on this project's 2-core machines are noisy (other jobs run), so scripts record the
load average with each row and compare engines only within one run, as ratios.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
WORK = REPO / "runs" / "benchmarks"          # cached artifacts and resumable state (git-ignored)
CHILD_MARK = "@@benchmark-result@@ "


@functools.cache
def expert_runner():
    """One ExpertRunner per benchmark process: experts already scored on the same sample decode once."""
    from samedge.select.runner import ExpertRunner
    return ExpertRunner()


# --- machine ---------------------------------------------------------------------

def load_average() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": cores(), "python": platform.python_version(),
            "load_at_start": load_average()}


def fmt_load(load) -> str:
    return " / ".join(f"{x:.1f}" for x in load)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB (VmHWM: this address space only, since exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_WRAPPER = """
import atexit, json, runpy, sys
def _report():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.stderr.write(%r + json.dumps({'peak_rss_mb': int(line.split()[1]) / 1024}) + '\\n')
atexit.register(_report)
module = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_module(module, run_name='__main__', alter_sys=True)
"""


def module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` and reports the process's peak RSS at exit
    (picked up by ``run_child``), for programs that are not ours to instrument (the CLI)."""
    return [sys.executable, "-c", _WRAPPER % CHILD_MARK, module, *args]


def isolated_home() -> Path:
    """A $SAMEDGE_HOME for benchmark builds (runs/benchmarks/home) sharing the real model caches, so
    that building here leaves the user's "last bundle" alone. Sets it in os.environ (children
    inherit it) and returns it."""
    if str(REPO) not in sys.path:  # the helper lives with the tests (it is no part of samedge)
        sys.path.insert(0, str(REPO))
    from tests.homes import home_sharing_model_caches

    home = home_sharing_model_caches(WORK / "home")
    os.environ["SAMEDGE_HOME"] = str(home)
    return home


# --- child processes -----------------------------------------------------------------

def run_child(argv: list[str], *, timeout: float | None = None, env: dict | None = None,
              cwd: Path = REPO, nice: int = 0) -> dict:
    """Run ``argv`` and measure it: {"rc", "wall_s", "peak_rss_mb", "stdout", "stderr", "result"}.

    ``result`` is the JSON object the child printed after ``CHILD_MARK`` (see ``emit``), or None.
    ``peak_rss_mb`` is the child's own report (``emit``, ``module_argv``), else None.
    """
    full_env = dict(os.environ, **(env or {}))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=full_env, cwd=cwd,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status = os.waitpid(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    result, peak = None, None
    for line in stdout.splitlines() + stderr.splitlines():
        if line.startswith(CHILD_MARK):
            got = json.loads(line[len(CHILD_MARK):])
            peak = got.get("peak_rss_mb", peak)
            if set(got) != {"peak_rss_mb"}:
                result = got
    return {"rc": proc.returncode, "wall_s": round(wall, 2), "peak_rss_mb": None if peak is None else round(peak, 1),
            "stdout": stdout, "stderr": stderr, "result": result}


def emit(result: dict) -> None:
    """In a child: print the result line (with this process's peak RSS) that ``run_child`` picks up."""
    result = dict(result, peak_rss_mb=round(peak_rss_mb(), 1))
    sys.stdout.write(CHILD_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def child_failed(run: dict) -> str:
    tail = (run["stderr"] or run["stdout"]).strip().splitlines()[-15:]
    return f"child exited with {run['rc']}:\n" + "\n".join(tail)


# --- resumable state --------------------------------------------------------------------

class State:
    """Rows of one benchmark run, saved after each row, so that an interrupted run resumes.

    A run is identified by its config. Rerunning with the same config after an interruption
    continues where it stopped; once a run is complete, the next invocation starts a new one
    (``fresh=True`` always does). ``--report-only`` style use: ``State.last(path)``.
    """

    def __init__(self, path: Path, config: dict, fresh: bool = False):
        self.path = Path(path)
        self.config = config
        old = self._read()
        if old and not fresh and not old.get("complete") and old.get("config") == config:
            self.data = old
            self.resumed = True
        else:
            self.data = {"config": config, "started": now(), "machine": machine(), "rows": {}, "complete": False}
            self.resumed = False
            self.save()

    def _read(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def last(path: Path) -> dict | None:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None

    @property
    def rows(self) -> dict:
        return self.data["rows"]

    def has(self, key: str) -> bool:
        return key in self.rows

    def put(self, key: str, value: dict) -> None:
        self.rows[key] = value
        self.save()

    def finish(self, **extra) -> None:
        self.data.update(extra, complete=True, finished=now())
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


# --- output ---------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table (also readable as plain text)."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


@contextlib.contextmanager
def _locked(path: Path):
    from samedge.files import file_lock

    WORK.mkdir(parents=True, exist_ok=True)
    with file_lock(WORK / (path.name + ".lock")):
        yield


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in BENCHMARKS.md
    (appended when absent), leaving every other section as it is. Atomic, and locked against
    another benchmark writing its own section at the same moment."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    with _locked(path):
        text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
        if start in text and end in text and text.index(start) < text.index(end):
            text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def publish(name: str, text: str, write: bool = True) -> None:
    """Print a benchmark's report and (unless ``write`` is False) store it as its BENCHMARKS.md section."""
    print()
    print(text)
    if write:
        write_section(name, text)
        print(f"\nwrote the {name} section of BENCHMARKS.md")
