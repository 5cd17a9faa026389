"""One model, one worker thread, a bounded queue: requests batched together through ``extract_many``.

The worker thread loads the extractor (so the service can answer ``/health`` while the bundle is
hashed and loaded), then loops: it blocks for the first waiting job, takes every other job already
waiting (until ``batch_size`` texts), and runs all their texts through one ``extract_records`` call.
Ten clients sending one sentence each therefore cost about one batch of ten.

A job is a ``concurrent.futures.Future``; the worker marks it running when it takes it, so a job
cancelled before that (its request timed out while queued) is skipped and never costs any work.
Nothing here knows about HTTP: ``samedge.serve.app`` turns the outcomes into responses.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

log = logging.getLogger("samedge.serve")


class QueueFull(Exception):
    """The queue of waiting requests is full."""


class NotReady(Exception):
    """The model is not loaded (yet, or it failed to load)."""


@dataclass
class Job:
    texts: list[str]
    ids: list[str]
    future: Future = field(default_factory=Future)
    abandoned: bool = False  # set by the client side when it stops waiting (timeout): the rest is skipped


_STOP = object()


class Batcher:
    """``submit(texts, ids) -> Job`` (``job.future``: the records); ``start()`` loads the model in the worker thread."""

    def __init__(self, load, *, max_queue: int = 64, batch_size: int = 16, errors: str = "strict", on_fatal=None):
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self._load = load
        self.batch_size = batch_size
        self.errors = errors
        self._on_fatal = on_fatal
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._carry: Job | None = None  # a job taken from the queue that did not fit the last batch
        self._closing = False  # stop() was called: no new jobs
        self._stop_seen = False  # the worker took the stop mark while filling a batch
        self.extractor = None
        self.load_error: str | None = None
        self.running = 0  # texts in the batch being extracted now
        # Observability (read by /health, tests and the benchmark): batches run and the largest one.
        self.batches = 0
        self.max_batch_jobs = 0
        self.max_batch_texts = 0
        self.cancelled = 0

    # --- state ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def queued(self) -> int:
        return self._queue.qsize() + (self._carry is not None)

    def stats(self) -> dict:
        return {"queued": self.queued, "running": self.running, "batches": self.batches,
                "max_batch_requests": self.max_batch_jobs, "max_batch_texts": self.max_batch_texts,
                "cancelled": self.cancelled}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="samedge-extract", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the batch in progress, fail what is still queued, end the worker."""
        if self._thread is None:
            return
        self._closing = True
        while True:  # make room for the stop mark: whatever still waits is refused
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:
                self._fail(self._take_nowait(), NotReady("the service is stopping"))
        self._thread.join(timeout)
        if self._thread.is_alive():  # still decoding (or loading): leave the model to the process's exit
            log.warning("the worker did not finish within %s s; stopping without it", timeout)
            return
        self._thread = None
        close = getattr(getattr(self.extractor, "engine", None), "close", None)
        if close is not None:
            close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    # --- clients ---------------------------------------------------------------------------

    def submit(self, texts: list[str], ids: list[str]) -> Job:
        """Queue one request's texts; raises NotReady before the model is loaded, QueueFull when full.
        A client that stops waiting cancels ``job.future`` (a job not started never runs) and sets
        ``job.abandoned`` (a request larger than a batch stops after the slice in progress)."""
        if self._closing:
            raise NotReady("the service is stopping")
        if not self.ready:
            raise NotReady(self.load_error or "the model is loading")
        job = Job(list(texts), list(ids))
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull() from None
        return job

    # --- the worker --------------------------------------------------------------------------

    def _take_nowait(self):
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    @staticmethod
    def _fail(job, exc: Exception) -> None:
        if isinstance(job, Job) and job.future.set_running_or_notify_cancel():
            job.future.set_exception(exc)

    def _run(self) -> None:
        try:
            t = time.perf_counter()
            self.extractor = self._load()
            log.info("model loaded in %.1f s", time.perf_counter() - t)
        except BaseException as exc:  # noqa: BLE001 - reported as the service's one-line error
            self.load_error = f"the bundle could not be loaded: {exc}".replace("\n", " ")
            if self._on_fatal is not None:  # the runner stops the service and prints it as its error line
                self._on_fatal(self.load_error)
            else:
                log.error("error: %s", self.load_error)
            while (item := self._queue.get()) is not _STOP:
                self._fail(item, NotReady(self.load_error))
            return
        self._ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                break
            if batch:
                self._extract(batch)
        while (item := self._take_nowait()) is not None:  # submitted while stopping: refused
            self._fail(item, NotReady("the service is stopping"))

    def _next_batch(self) -> list[Job] | None:
        """The jobs of the next batch (skipping cancelled ones), or None at the stop mark."""
        if self._carry is not None:
            first, self._carry = self._carry, None
        elif self._stop_seen:
            return None
        else:
            first = self._queue.get()
        if first is _STOP:
            return None
        batch, n = [], 0
        item = first
        while True:
            if item.future.set_running_or_notify_cancel():
                batch.append(item)
                n += len(item.texts)
            else:
                self.cancelled += 1
            if n >= self.batch_size:
                break
            item = self._take_nowait()
            if item is None:
                break
            if item is _STOP:
                self._stop_seen = True  # the worker ends after this batch (and a carried job)
                break
            if batch and n + len(item.texts) > self.batch_size:
                self._carry = item  # does not fit: first of the next batch (not marked running yet)
                break
        return batch

    def _extract(self, batch: list[Job]) -> None:
        from ..extract.api import extract_records

        texts = [t for job in batch for t in job.texts]
        ids = [i for job in batch for i in job.ids]
        self.running = len(texts)
        self.batches += 1
        self.max_batch_jobs = max(self.max_batch_jobs, len(batch))
        self.max_batch_texts = max(self.max_batch_texts, len(texts))
        try:
            if len(batch) == 1 and len(texts) > self.batch_size:
                return self._sliced(batch[0])
            try:
                records = extract_records(self.extractor, texts, ids, errors=self.errors)
            except Exception:  # noqa: BLE001 - one request must not fail the others: run them alone
                if len(batch) == 1:
                    raise
                log.exception("a batch of %d requests failed; running them one by one", len(batch))
                for job in batch:
                    self._one(job)
                return
            at = 0
            for job in batch:
                job.future.set_result(records[at:at + len(job.texts)])
                at += len(job.texts)
        except Exception as exc:  # noqa: BLE001
            log.exception("extraction failed")
            batch[0].future.set_exception(exc)
        finally:
            self.running = 0

    def _sliced(self, job: Job) -> None:
        """A request with more texts than a batch, ``batch_size`` texts at a time (as `samedge extract`
        groups documents), stopping early when its client has gone."""
        from ..extract.api import extract_records

        records = []
        for at in range(0, len(job.texts), self.batch_size):
            if job.abandoned:
                self.cancelled += 1
                job.future.set_exception(TimeoutError("abandoned by its client"))
                return
            records += extract_records(self.extractor, job.texts[at:at + self.batch_size],
                                       job.ids[at:at + self.batch_size], errors=self.errors)
        job.future.set_result(records)

    def _one(self, job: Job) -> None:
        from ..extract.api import extract_records
        try:
            job.future.set_result(extract_records(self.extractor, job.texts, job.ids, errors=self.errors))
        except Exception as exc:  # noqa: BLE001
            log.exception("extraction failed")
            job.future.set_exception(exc)
