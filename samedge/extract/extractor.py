"""The Extractor: documents in, entities with exact character offsets out.

    from samedge import Extractor
    ex = Extractor.load("bundles/legal")
    ex.extract("The Court of Appeal ruled on 3 May 2021.")["entities"]

It chunks each document to fit the context, builds the prompt
(samedge.extract.prompts), asks the engine for answers in batches, parses and aligns
them, and maps spans back to document offsets. Every result carries its own
counts: chunks, parse failures, dropped labels, mentions not found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..data.labels import Label, check_labels, label_key
from ..errors import UserError
from .prompts import align, clean_text, parse_answer, split_prompt
from .records import new_counts as _new_counts
from .chunking import SENTENCE_END as _SENTENCE_END, Chunk, iter_chunks

_WHITESPACE = re.compile(r"\s+")

DEFAULT_CHUNK_TOKENS = 192
DEFAULT_ANSWER_TOKENS = 160
MAX_SPLITS = 3  # an answer cut at max_tokens: split the chunk and retry, at most this deep
# Chunks handed to the engine at once: bounds the memory of the model's work (token lists, answers)
# however long the document; far more than the engine decodes together (n_seq), so little speed is lost.
WINDOW = 512


@dataclass
class _Job:
    doc: int
    chunk: Chunk
    depth: int = 0


class Extractor:
    """Runs one engine over documents with one label set."""

    def __init__(self, engine, labels: list[Label], *, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                 answer_tokens: int = DEFAULT_ANSWER_TOKENS, info: dict | None = None,
                 answer_map: dict | None = None, raw_answers: bool = False):
        """``answer_map``: answer type -> tag (or None: dropped), learned at build time from labeled
        examples (samedge.select.answer_map); ``raw_answers``: entities carry the answer's own type
        (normalised by label_key), known to the label set or not, which is what that map learns from."""
        if not labels:
            raise UserError("the label set is empty")
        self.engine = engine
        self.labels = check_labels(labels)  # two labels with one prompt name could not be told apart
        tags = {lab.tag for lab in self.labels}
        self.answer_map = {label_key(k): v for k, v in (answer_map or {}).items() if v is None or v in tags}
        self.raw_answers = raw_answers
        self.chunk_tokens = chunk_tokens
        self.answer_tokens = answer_tokens
        self.info = info or {}
        self.prefix, self.suffix = split_prompt(self.labels)
        prefix, suffix = self.prefix, self.suffix
        overhead = engine.count_tokens(prefix) + engine.count_tokens(suffix)
        n_ctx = getattr(engine, "n_ctx", None)
        if n_ctx is not None and overhead + chunk_tokens + answer_tokens > n_ctx:
            raise UserError(f"context too small: the prompt needs {overhead} tokens, chunks {chunk_tokens} and "
                            f"answers {answer_tokens}, but n_ctx is {n_ctx}")

    @classmethod
    def load(cls, bundle=None, **kw) -> "Extractor":
        """Load a bundle directory (verified by sha256) with the llama.cpp engine."""
        from ..bundle.load import open_extractor
        return open_extractor(cls, bundle, **kw)

    def _fits(self, text: str) -> bool:
        return self.engine.count_tokens(text) <= self.chunk_tokens

    def extract(self, text: str, doc_id: str = "0") -> dict:
        return self.extract_many([text], ids=[doc_id])[0]

    def extract_many(self, texts: list[str], ids: list[str] | None = None) -> list[dict]:
        """Entities for each text; the engine sees the chunks of all texts together, ``WINDOW`` at a time."""
        ids = ids or [str(i) for i in range(len(texts))]
        results = [{"id": doc_id, "text": text, "entities": [], "counts": _new_counts()}
                   for doc_id, text in zip(ids, texts)]
        jobs = (_Job(i, c) for i, text in enumerate(texts) for c in iter_chunks(text, self._fits))
        for window in _windows(jobs, WINDOW):
            for job, answer in self._answers(window, lambda doc: results[doc]["counts"]):
                result = results[job.doc]
                result["entities"] += self._entities(result["text"], job.chunk, answer, result["counts"])
        for r in results:
            r["entities"].sort(key=lambda e: (e["start"], e["end"]))
        return results

    def stream(self, text: str, counts: dict):
        """The entities of one long document in text order, ``WINDOW`` chunks at a time, so that
        neither the model's work nor the entities found are ever all held at once. ``counts`` (a
        dict like a result's) is filled in as it goes; it is complete when the iterator ends."""
        counts.update({k: counts.get(k, 0) for k in _new_counts()})
        for window in _windows((_Job(0, c) for c in iter_chunks(text, self._fits)), WINDOW):
            found = []
            for job, answer in self._answers(window, lambda doc: counts):
                found += self._entities(text, job.chunk, answer, counts)
            # Chunks are disjoint and in text order, so each window's entities follow the previous ones'.
            yield from sorted(found, key=lambda e: (e["start"], e["end"]))

    def _answers(self, jobs: list[_Job], counts_of):
        """(job, answer) for every chunk of ``jobs``; a chunk whose answer ran out of tokens while
        listing entities is halved and asked again (at most MAX_SPLITS deep)."""
        while jobs:
            answers = self.engine.complete(self.prefix, [clean_text(j.chunk.text) for j in jobs], self.suffix,
                                           self.answer_tokens)
            retry = []
            for job, (answer, finished) in zip(jobs, answers):
                counts = counts_of(job.doc)
                if (not finished and job.depth < MAX_SPLITS and len(job.chunk.text) > 1
                        and _enumerating(answer, self.labels)):
                    # The answer ran out of tokens listing entities: more than fit. Halve the chunk.
                    counts["split_retries"] += 1
                    retry.extend(_Job(job.doc, c, job.depth + 1) for c in _halves(job.chunk, self._fits))
                    continue
                counts["chunks"] += 1
                counts["unfinished_answers"] += not finished
                yield job, answer
            jobs = retry

    def _entities(self, text: str, chunk: Chunk, answer: str, counts: dict) -> list[dict]:
        parsed = parse_answer(answer, self.labels, self.answer_map, raw=self.raw_answers)
        aligned = align(chunk.text, parsed.pairs)
        counts["parse_failures"] += parsed.malformed
        counts["dropped_labels"] += sum(parsed.unknown_labels.values())
        counts["not_found"] += aligned.not_found
        counts["overlaps"] += aligned.overlaps
        out = []
        for e in aligned.entities:
            start, end = e["start"] + chunk.start, e["end"] + chunk.start
            out.append({"start": start, "end": end, "label": e["label"], "text": text[start:end]})
        return out


def _windows(items, size: int):
    """Lists of at most ``size`` items, taken lazily."""
    window = []
    for item in items:
        window.append(item)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _enumerating(answer: str, labels) -> bool:
    """True when an unfinished answer is a list of distinct entities (so a smaller chunk helps),
    False when the model loops on one line or writes no answer lines at all (splitting would
    only repeat that, at twice the cost)."""
    pairs = parse_answer(answer, labels).pairs
    return len(pairs) >= 2 and len(set(pairs)) * 2 > len(pairs)


def _halves(chunk: Chunk, fits=None) -> list[Chunk]:
    """Split a chunk near its middle: at the sentence end closest to the middle, else at the
    whitespace closest to it, else (text without spaces, e.g. CJK) at the middle itself.
    Only cuts between a quarter and three quarters of the text count, so each half shrinks."""
    text = chunk.text
    n = len(text)
    middle, low, high = n // 2, n // 4, n - n // 4
    cut = None
    for pattern in (_SENTENCE_END, _WHITESPACE):
        cuts = [m.end() for m in pattern.finditer(text) if low <= m.end() <= high and 0 < m.end() < n]
        if cuts:
            cut = min(cuts, key=lambda c: abs(c - middle))
            break
    if cut is None:
        cut = max(1, middle)
    out = []
    for offset, piece in ((0, text[:cut]), (cut, text[cut:])):
        stripped = piece.strip()
        if stripped:
            out.append(Chunk(chunk.start + offset + len(piece) - len(piece.lstrip()), stripped))
    return out
