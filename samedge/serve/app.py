"""The HTTP JSON API of `samedge serve`, as a Starlette app (``create_app``); uvicorn runs it (runner.py).

    POST /extract   {"text": "...", "id"?: "..."}        -> the record `samedge extract --format jsonl` writes
                    {"texts": ["...", ...], "ids"?: [...]} -> {"records": [record, ...]}
                    (Accept: application/x-ndjson: the JSONL lines themselves, byte for byte the CLI's)
    GET  /health    200 once the bundle is verified and loaded, 503 before (or when it failed)
    GET  /info      the bundle's target, labels, experts, quant type and sha256s

Every error is a JSON object ``{"error": "..."}`` with its status: 400 (bad JSON, missing field,
wrong type, invalid UTF-8), 401 (bearer token), 404/405, 408 (body not received in time),
413 (body too large), 503 (queue full or model not loaded; with Retry-After), 504 (timed out).
One log line per request: method, path, status, milliseconds, number of texts; never a text or
the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from concurrent.futures import CancelledError

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .batcher import Batcher, NotReady, QueueFull

log = logging.getLogger("samedge.serve")

NDJSON = "application/x-ndjson"
FIELDS = {"text", "id", "texts", "ids"}
N_TEXTS = "samedge.n_texts"  # scope key: the request's number of texts, for the log line


class BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# --- request parsing ------------------------------------------------------------------------

async def read_body(request: Request, max_body: int, deadline_s: float) -> bytes:
    """The whole body, refused (413) as soon as it is known to exceed ``max_body`` bytes: from
    Content-Length before reading, else while streaming (chunked bodies); 408 when the client has
    not sent it within ``deadline_s`` seconds. Reading awaits the socket, so a slow client holds
    only its own request."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body:
        raise BadRequest(413, f"request body is {int(length)} bytes; the limit is {max_body} bytes (--max-body)")

    async def collect() -> bytes:
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > max_body:
                raise BadRequest(413, f"request body exceeds the limit of {max_body} bytes (--max-body)")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), deadline_s)
    except asyncio.TimeoutError:
        raise BadRequest(408, f"request body not received within {deadline_s:g} s") from None


def _valid_unicode(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate, from a JSON escape such as "\ud800"
        raise BadRequest(400, f"{where} is not valid Unicode: lone surrogate {value[e.start]!r} at character "
                              f"{e.start}") from None


def parse_extract(body: bytes) -> tuple[list[str], list[str], bool]:
    """(texts, ids, single) from an /extract body; BadRequest(400) naming the problem."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(400, f"request body is not valid UTF-8 (byte 0x{body[e.start]:02x} at byte offset "
                              f"{e.start})") from None
    if decoded.startswith("\ufeff"):
        decoded = decoded[1:]
    try:
        payload = json.loads(decoded)
    except json.JSONDecodeError as e:
        raise BadRequest(400, f"request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, f"request body must be a JSON object, not {_kind(payload)}")
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise BadRequest(400, f"unknown field {unknown[0]!r} (expected 'text' and optional 'id', "
                              "or 'texts' and optional 'ids')")
    if ("text" in payload) == ("texts" in payload):
        raise BadRequest(400, "missing field 'text' (a string) or 'texts' (a list of strings)"
                         if "text" not in payload else "give either 'text' or 'texts', not both")
    if "text" in payload:
        if "ids" in payload:
            raise BadRequest(400, "'ids' goes with 'texts'; with 'text' use 'id'")
        text, doc_id = payload["text"], payload.get("id", "0")
        if not isinstance(text, str):
            raise BadRequest(400, f"'text' must be a string, not {_kind(text)}")
        if not isinstance(doc_id, str):
            raise BadRequest(400, f"'id' must be a string, not {_kind(doc_id)}")
        _valid_unicode(text, "'text'")
        _valid_unicode(doc_id, "'id'")
        return [text], [doc_id], True
    if "id" in payload:
        raise BadRequest(400, "'id' goes with 'text'; with 'texts' use 'ids'")
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise BadRequest(400, f"'texts' must be a list of strings, not {_kind(texts)}")
    if not texts:
        raise BadRequest(400, "'texts' is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(400, f"'texts'[{i}] must be a string, not {_kind(text)}")
        _valid_unicode(text, f"'texts'[{i}]")
    ids = payload.get("ids")
    if ids is None:
        ids = [str(i) for i in range(len(texts))]
    else:
        if not isinstance(ids, list):
            raise BadRequest(400, f"'ids' must be a list of strings, not {_kind(ids)}")
        if len(ids) != len(texts):
            raise BadRequest(400, f"'ids' has {len(ids)} items but 'texts' has {len(texts)}")
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str):
                raise BadRequest(400, f"'ids'[{i}] must be a string, not {_kind(doc_id)}")
            _valid_unicode(doc_id, f"'ids'[{i}]")
    return texts, ids, False


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# --- the app ------------------------------------------------------------------------------------

class RequestLog:
    """ASGI middleware: one log line per HTTP request (method, path, status, ms, number of texts)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            log.info("%s %s %d %.1f ms texts=%d", scope.get("method"), scope.get("path"), status[0],
                     (time.perf_counter() - started) * 1000, scope.get(N_TEXTS, 0))


def create_app(load, *, info: dict | None = None, token: str | None = None, max_body: int = 4 << 20,
               max_queue: int = 64, timeout: float = 60.0, batch_size: int = 16, retry_after: int = 1,
               batcher: Batcher | None = None, on_fatal=None) -> Starlette:
    """The service as an ASGI app. ``load()`` returns the Extractor (it runs in the worker thread at
    startup; the app answers /health with 503 until it returns). ``info`` is what /info shows,
    ``token`` (when set) the bearer token /extract and /info require. ``app.state.batcher`` is the
    batcher (tests and the benchmark read its stats)."""
    batcher = batcher or Batcher(load, max_queue=max_queue, batch_size=batch_size, on_fatal=on_fatal)
    info = dict(info or {})
    expected = token.encode("utf-8") if token else None
    busy = {"Retry-After": str(retry_after)}

    def authorized(request: Request) -> bool:
        if expected is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"), expected)

    def unauthorized() -> JSONResponse:
        return error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                     {"WWW-Authenticate": 'Bearer realm="samedge"'})

    async def health(request: Request) -> Response:
        if batcher.ready:
            return JSONResponse({"status": "ok", **batcher.stats()})
        if batcher.load_error:
            return JSONResponse({"status": "failed", "error": batcher.load_error}, status_code=503)
        return JSONResponse({"status": "loading", "error": "the model is loading"}, status_code=503, headers=busy)

    async def info_route(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return JSONResponse(dict(info, ready=batcher.ready))

    async def extract(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        try:
            body = await read_body(request, max_body, timeout)
            texts, ids, single = parse_extract(body)
        except BadRequest as e:
            return error(e.status, str(e), e.headers)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        request.scope[N_TEXTS] = len(texts)
        try:
            job = batcher.submit(texts, ids)
        except QueueFull:
            return error(503, f"the queue is full ({batcher.queued} requests waiting); retry later", busy)
        except NotReady as e:
            return error(503, str(e), busy)
        try:
            # On timeout the wrapped future is cancelled: a job not yet started is never run; a running
            # one finishes its batch (a request larger than a batch, its slice) and the result is dropped.
            records = await asyncio.wait_for(asyncio.wrap_future(job.future), timeout)
        except asyncio.TimeoutError:
            job.abandoned = True
            return error(504, f"extraction did not finish within {timeout:g} s (--timeout)")
        except (CancelledError, NotReady) as e:
            return error(503, str(e) or "the service is stopping", busy)
        except Exception as e:  # noqa: BLE001 - logged with its traceback by the worker
            return error(500, f"extraction failed: {type(e).__name__}")
        if NDJSON in request.headers.get("accept", ""):
            from ..extract.api import render
            return Response("".join(render(r, "jsonl") for r in records), media_type=NDJSON)
        return JSONResponse(records[0] if single else {"records": records})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return error(500, "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, batcher.stop, timeout)

    from starlette.middleware import Middleware
    app = Starlette(routes=[Route("/extract", extract, methods=["POST"]), Route("/health", health, methods=["GET"]),
                            Route("/info", info_route, methods=["GET"])],
                    middleware=[Middleware(RequestLog)],
                    exception_handlers={HTTPException: http_error, Exception: server_error},
                    lifespan=lifespan)
    app.state.batcher = batcher
    return app


def bundle_info(bundle) -> dict:
    """What /info shows, from bundle.json (read and shape-checked; the sha256s are verified at load)."""
    from ..bundle import read_bundle

    data = read_bundle(bundle)
    merge = data.get("merge") or {}
    out = {"bundle": str(bundle), "target": data.get("target"), "labels": data["labels"],
           "experts": [{"name": e.get("name"), "weight": e.get("weight")} for e in merge.get("experts", [])],
           "merge_method": merge.get("method"), "quant": data["quant"], "sha256": data["files"],
           "base": data["base"], "samedge_version": data.get("samedge_version")}
    if data.get("ensemble"):
        merge_b = data["ensemble"].get("merge_b") or {}
        out["ensemble"] = {"combine": data["ensemble"].get("combine"),
                           "experts_b": [{"name": e.get("name"), "weight": e.get("weight")}
                                         for e in merge_b.get("experts", [])]}
    return out
