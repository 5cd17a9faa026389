"""Split a document into chunks that fit the model's context, keeping exact offsets.

Chunks are whole sentences where possible, then whitespace-separated pieces of
an over-long sentence, then (only for an unbroken run of characters) a hard
split. Nothing is dropped: the chunks cover every non-space character of the
text, in order, and each chunk knows its start offset in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace, or at a blank line.
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n")
_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Chunk:
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _pieces(text: str, start: int, pattern: re.Pattern):
    """Spans of ``text[start:]`` cut after each match of ``pattern`` (the separator stays with the left piece), lazily."""
    last = 0
    for m in pattern.finditer(text):
        if m.end() > last:
            yield start + last, start + m.end()
            last = m.end()
    if last < len(text):
        yield start + last, start + len(text)


def _hard_split(start: int, end: int, text: str, fits: Callable[[str], bool]) -> list[tuple[int, int]]:
    """Cut an unbroken run into the longest prefixes that fit.

    Galloping, then binary search per piece: the probes grow from the piece's
    start, so each piece costs O(piece length x log) and a multi-megabyte run
    (a base64 blob) is not re-tokenised whole for every piece.
    """
    spans = []
    while start < end:
        lo, step = start + 1, 1
        while lo + step <= end and fits(text[start:lo + step]):
            lo += step
            step *= 2
        hi = min(end, lo + step - 1)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(text[start:mid]):
                lo = mid
            else:
                hi = mid - 1
        spans.append((start, lo))
        start = lo
    return spans


def chunk_text(text: str, fits: Callable[[str], bool]) -> list[Chunk]:
    """Pack sentences into chunks for which ``fits(chunk_text)`` is true.

    ``fits`` is usually "token count <= budget". Whitespace-only chunks are
    dropped (there is nothing to find in them); every other character belongs
    to exactly one chunk.
    """
    return list(iter_chunks(text, fits))


def _units(text: str, fits: Callable[[str], bool]):
    """Sentences that fit, else their words that fit, else hard-split pieces; in text order."""
    for s, e in _pieces(text, 0, SENTENCE_END):
        if fits(text[s:e]):
            yield s, e
            continue
        for ws, we in _pieces(text[s:e], s, _WORD):
            yield from [(ws, we)] if fits(text[ws:we]) else _hard_split(ws, we, text, fits)


def _chunk(text: str, s: int, e: int) -> Chunk | None:
    piece = text[s:e]
    stripped = piece.strip()
    if not stripped:
        return None
    return Chunk(s + len(piece) - len(piece.lstrip()), stripped)


def iter_chunks(text: str, fits: Callable[[str], bool]):
    """``chunk_text`` lazily: a long document's chunks are made as they are consumed, never all held."""
    cur_start = cur_end = None
    for s, e in _units(text, fits):
        if cur_start is not None and fits(text[cur_start:e]):
            cur_end = e
            continue
        if cur_start is not None and (chunk := _chunk(text, cur_start, cur_end)) is not None:
            yield chunk
        cur_start, cur_end = s, e
    if cur_start is not None and (chunk := _chunk(text, cur_start, cur_end)) is not None:
        yield chunk
