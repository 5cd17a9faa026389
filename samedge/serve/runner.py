"""Run the service: bind the socket, start uvicorn over ``create_app``, exit cleanly on SIGTERM.

uvicorn does the HTTP (h11), the keep-alive handling and the graceful shutdown: on SIGTERM or
SIGINT it closes the listening socket, lets the requests in flight finish (at most
``timeout + GRACE`` seconds), then runs the app's shutdown (the worker thread ends). samedge binds
the socket itself (SO_REUSEADDR, as uvicorn does) so that a port in use is a one-line error and
``--port 0`` can say which port it got. No pid or lock file is written: a SIGKILLed service leaves
nothing behind but the kernel's TIME_WAIT entries, which SO_REUSEADDR ignores.
"""

from __future__ import annotations

import functools
import logging
import signal
import socket
import sys

from ..errors import UserError

log = logging.getLogger("samedge.serve")
GRACE = 10.0  # seconds beyond --timeout that a graceful shutdown waits for requests in flight


def need_extra() -> None:
    """A one-line error naming the extra when starlette or uvicorn is missing."""
    import importlib.util
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"samedge serve needs {' and '.join(missing)}: pip install 'samedge[serve]'")


def read_token(path) -> str:
    try:
        token = open(path, encoding="utf-8").read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the token file ({getattr(e, 'strerror', None) or e})") from None
    if not token:
        raise UserError(f"{path}: the token file is empty")
    if any(c.isspace() for c in token):
        raise UserError(f"{path}: the token must be one line without spaces")
    return token


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (SO_REUSEADDR); a one-line error when that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s samedge-serve %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def serve(bundle=None, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          max_body: int = 4 << 20, max_queue: int = 64, timeout: float = 60.0, threads: int | None = None,
          batch_size: int = 16, n_seq: int = 8, load=None) -> None:
    """Serve ``bundle`` until SIGTERM/SIGINT; returns normally after a graceful shutdown, raises
    UserError when the bundle is missing or fails to load, or the port cannot be bound."""
    need_extra()
    import uvicorn

    from ..bundle import default_bundle, load_extractor
    from .app import bundle_info, create_app

    setup_logging()
    bundle = bundle if bundle is not None else default_bundle()
    info = bundle_info(bundle)  # a missing or malformed bundle stops here, before binding
    load = load or functools.partial(load_extractor, bundle, threads=threads, n_seq=n_seq)
    fatal: list[str] = []
    holder: dict = {}

    def on_fatal(message: str) -> None:
        fatal.append(message)
        if "server" in holder:
            holder["server"].should_exit = True

    app = create_app(load, info=info, token=token, max_body=max_body, max_queue=max_queue, timeout=timeout,
                     batch_size=batch_size, on_fatal=on_fatal)
    sock = bind(host, port)
    where = sock.getsockname()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False,
                            proxy_headers=False, timeout_graceful_shutdown=int(timeout + GRACE))
    server = holder["server"] = uvicorn.Server(config)
    if fatal:  # the load failed before the server existed
        server.should_exit = True
    # uvicorn re-raises the signal that stopped it once it has shut down (so that the default
    # handler would end the process); with these no-op handlers a graceful stop exits 0.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("listening on http://%s:%d (bundle %s; %s); loading the model", *_host_port(where), bundle,
             "bearer token required" if token else "no token")
    if not token and not _loopback(where[0]):
        log.warning("warning: %s is not a loopback address and no --token-file is set: anyone who can reach "
                    "this port can use the service", where[0])
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if fatal:
        raise UserError(fatal[0])
    log.info("stopped")


def _loopback(host: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _host_port(address) -> tuple[str, int]:
    host, port = address[0], address[1]
    return (f"[{host}]" if ":" in host else host), port
