"""``samedge.api.run_extract`` and ``extract_records``: the path README's "Python API" promised;
they live in ``samedge.extract.api``."""

from .extract.api import extract_records, run_extract

__all__ = ["extract_records", "run_extract"]
