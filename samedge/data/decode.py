"""Strict text decoding: UTF-8 (BOM allowed), with errors that name the line and byte offset."""

from __future__ import annotations

import codecs
from pathlib import Path

from ..errors import DataError, UserError

BINARY_SNIFF = 8192


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_bytes(data: bytes, path: str = "<input>", errors: str = "strict") -> str:
    """Decode UTF-8 strictly. A BOM is removed. ``errors='replace'`` substitutes U+FFFD.

    Errors are ``DataError``s (``file:line: what``), so the CLI prints one line.
    """
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        raise DataError(path, 1, "UTF-16 text is not supported; convert it to UTF-8 "
                                 "(e.g. iconv -f UTF-16 -t UTF-8)")
    nul = data.find(b"\0", 0, BINARY_SNIFF)
    if nul >= 0:
        raise DataError(path, _line_of(data, nul),
                        f"looks like a binary file (NUL byte at byte offset {nul}), not UTF-8 text")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        offset = e.start + bom
        raise DataError(path, _line_of(data, offset),
                        f"invalid UTF-8 at byte offset {offset} (byte 0x{data[offset]:02x}); "
                        f"re-encode the file as UTF-8") from None


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes; a file that cannot be read is one line naming it and why."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory") from None
    except OSError as e:  # EIO, ENAMETOOLONG, ELOOP, ...: still one input, still one line
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None


def read_text(path: str | Path, errors: str = "strict") -> str:
    return decode_bytes(read_bytes(path), str(Path(path)), errors)


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 data file, without line endings (CRLF accepted)."""
    text = read_text(path)
    if not text.strip():
        raise DataError(path, 1, "file is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
