"""``samedge serve``: a local HTTP JSON extraction service over one bundle (needs the serve extra)."""

import re

import click

_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 1000 ** 2, "MB": 1000 ** 2, "MIB": 1024 ** 2,
          "G": 1000 ** 3, "GB": 1000 ** 3, "GIB": 1024 ** 3}


class Size(click.ParamType):
    """A byte count: 4MB, 512KiB, 1000000."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
        unit = m and m.group(2).upper()
        if not m or unit not in _UNITS or float(m.group(1)) * _UNITS[unit] < 1:
            self.fail(f"{value!r} is not a size (e.g. 4MB, 512KiB, 1000000)", param, ctx)
        return int(float(m.group(1)) * _UNITS[unit])


@click.command("serve")
@click.option("--bundle", "-b", type=click.Path(), help="Bundle directory (default: the last one built, then bundles/legal).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: any free one; the log says which).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="Require 'Authorization: Bearer TOKEN' with the token in this file.")
@click.option("--max-body", type=Size(), default="4MB", show_default=True, help="Largest request body.")
@click.option("--queue", "max_queue", type=click.IntRange(min=1), default=64, show_default=True,
              help="Requests that may wait for the model; more get 503 with Retry-After.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Seconds a request may take (queue + extraction) before a 504.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for llama.cpp (default: the cores available).")
@click.option("--max-batch", "batch_size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Texts run together in one batch (from all the requests waiting).")
@click.option("--batch", "n_seq", type=click.IntRange(min=1), default=8, show_default=True,
              help="Chunks decoded together (as in samedge extract).")
def serve(bundle, host, port, token_file, max_body, max_queue, timeout, threads, batch_size, n_seq):
    """Serve entity extraction over HTTP (JSON) on this machine.

    \b
    Endpoints:
      POST /extract  {"text": "..."} or {"texts": [...], "ids": [...]}: the records of samedge extract
      GET  /health   200 once the bundle is verified and loaded, 503 before
      GET  /info     target, labels, experts, quant type and sha256 of the bundle
    \b
    Example:
      samedge serve --bundle bundles/legal --port 8080
      curl -s localhost:8080/extract -d '{"text": "The High Court in London ruled."}'
    SIGTERM or Ctrl-C stops it gracefully: requests in flight are answered, then it exits 0.
    """
    from ..serve.runner import need_extra, read_token, serve as run

    need_extra()
    token = read_token(token_file) if token_file else None
    run(bundle, host=host, port=port, token=token, max_body=max_body, max_queue=max_queue, timeout=timeout,
        threads=threads, batch_size=batch_size, n_seq=n_seq)
