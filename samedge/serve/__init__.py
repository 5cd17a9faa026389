"""`samedge serve`: a local HTTP JSON extraction service (Starlette app, uvicorn server).

The core never imports this package; it needs the ``serve`` extra (``pip install 'samedge[serve]'``).

- ``samedge.serve.app.create_app(load, ...)``: the ASGI app (routes, limits, errors, request log);
- ``samedge.serve.batcher.Batcher``: one worker thread that owns the Extractor and runs the
  waiting requests together through ``extract_many``;
- ``samedge.serve.runner.serve(bundle, ...)``: binds the port and runs uvicorn (what the CLI calls).
"""
