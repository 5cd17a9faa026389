"""Shared fixtures: the shared NER data (skip or fail loudly), an offline guard, markers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner"


def shared_data_root() -> Path | None:
    """``$SAMEDGE_DATA`` or ``../shared/data/ner``; None when it is missing."""
    root = Path(os.environ["SAMEDGE_DATA"]) if os.environ.get("SAMEDGE_DATA") else SHARED_DATA
    return root if (root / "CATALOG.md").is_file() else None


def require_shared_data() -> Path:
    """The shared data folder. Missing: a failure in CI (it always has it), else a skip."""
    root = shared_data_root()
    if root is None:
        where = os.environ.get("SAMEDGE_DATA") or SHARED_DATA
        message = f"shared NER data not found at {where} (set SAMEDGE_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = require_shared_data()
    # The catalog reads $SAMEDGE_DATA too, so every test sees the same folder.
    os.environ.setdefault("SAMEDGE_DATA", str(root))
    return root


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection raises: proves a code path is offline."""
    def refuse(*args, **kwargs):
        raise NetworkBlocked("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def pytest_configure(config):
    # Also declared in pyproject.toml; registered here so the tests run from any rootdir.
    config.addinivalue_line("markers", "real: uses the real SmolLM2 base model or real shared data (slower)")
