"""Chunking: exact cover of the text, sentence boundaries first, then whitespace, then a hard split;
offsets map back; entities are never duplicated or lost across chunk edges."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samedge.extract import Extractor
from samedge.data.labels import make_label
from samedge.extract.chunking import chunk_text
from tests.bundle_fixtures import GoldEngine, check_spans


def non_space(s: str) -> str:
    return "".join(c for c in s if not c.isspace())


def assert_exact_cover(text: str, chunks, fits=None) -> None:
    """Every non-space character in exactly one chunk, in order; offsets map back; chunks trimmed."""
    previous_end = 0
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert c.start >= previous_end
        assert non_space(text[previous_end:c.start]) == ""  # nothing skipped between chunks
        previous_end = c.end
        if fits is not None:
            assert fits(c.text) or len(c.text) == 1
    assert non_space(text[previous_end:]) == ""
    assert "".join(non_space(c.text) for c in chunks) == non_space(text)


def by_chars(n):
    return lambda s: len(s) <= n


def by_words(n):
    return lambda s: len(s.split()) <= n


# --- properties ---------------------------------------------------------------------

ALPHABET = st.sampled_from(list("abcXYZ019 .!?\n\t\r,;'\")") + ["\n\n", "  ", "。", "é", "e\u0301", "😀", "\u00a0",
                                                              "東京", "\u2028", "...", "! ", ". "])
TEXTS = st.lists(ALPHABET, max_size=120).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.integers(1, 40))
def test_property_exact_cover_by_characters(text, budget):
    fits = by_chars(budget)
    assert_exact_cover(text, chunk_text(text, fits), fits)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.integers(1, 8))
def test_property_exact_cover_by_words(text, budget):
    fits = by_words(budget)
    assert_exact_cover(text, chunk_text(text, fits), fits)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(1, 50))
def test_property_any_unicode(text, budget):
    assert_exact_cover(text, chunk_text(text, by_chars(budget)), by_chars(budget))


# --- the boundary preference ----------------------------------------------------------

def test_sentence_boundaries_are_preferred():
    sentences = [f"Sentence number {i} says something short." for i in range(30)]
    text = " ".join(sentences)
    fits = by_words(20)  # three sentences of six words fit, four do not
    chunks = chunk_text(text, fits)
    assert_exact_cover(text, chunks, fits)
    assert len(chunks) == 10
    for c in chunks:
        assert c.text.endswith("short."), c.text  # every cut falls between sentences
        assert len(c.text.split()) == 18


def test_blank_line_is_a_boundary_and_quotes_stay_with_their_sentence():
    text = 'He said "Stop!" Then he left.\n\nA new paragraph starts here without a period\n\nLast one.'
    chunks = chunk_text(text, by_words(8))
    assert [c.text for c in chunks] == ['He said "Stop!" Then he left.', "A new paragraph starts here without a period",
                                        "Last one."]


def test_whitespace_fallback_never_cuts_a_word():
    words = [f"word{i:03d}" for i in range(200)]
    text = "  ".join(words)  # one 200-word "sentence" (no terminator)
    chunks = chunk_text(text, by_chars(60))
    assert_exact_cover(text, chunks, by_chars(60))
    assert len(chunks) > 1
    for c in chunks:
        assert c.start == 0 or text[c.start - 1].isspace()
        assert c.end == len(text) or text[c.end].isspace()
        assert all(w in words for w in c.text.split())


def test_long_sentence_among_short_ones_only_splits_itself():
    long = " ".join(f"w{i}" for i in range(50)) + "."
    text = f"Short one. {long} Short two."
    chunks = chunk_text(text, by_words(10))
    assert_exact_cover(text, chunks, by_words(10))
    assert chunks[0].text.startswith("Short one.") and chunks[-1].text.endswith("Short two.")
    for c in chunks:  # every cut falls at whitespace; the short sentences are never cut
        assert c.start == 0 or text[c.start - 1] == " "
    assert sum("Short" in c.text for c in chunks) == 2


def test_hard_split_of_an_unbroken_run():
    text = "x" * 1000
    chunks = chunk_text(text, by_chars(100))
    assert [(c.start, len(c.text)) for c in chunks] == [(i * 100, 100) for i in range(10)]


def test_hard_split_mixed_with_words():
    text = "alpha " + "y" * 250 + " omega."
    chunks = chunk_text(text, by_chars(100))
    assert_exact_cover(text, chunks, by_chars(100))
    assert all(len(c.text) <= 100 for c in chunks)


def test_hard_split_is_not_quadratic():
    """A multi-megabyte run without spaces (a base64 blob) must not re-tokenise the whole rest per chunk."""
    seen = [0]

    def fits(s):
        seen[0] += len(s)
        return len(s) <= 1000

    text = "Q" * 2_000_000
    chunks = chunk_text(text, fits)
    assert len(chunks) == 2000
    assert seen[0] < 60 * len(text), seen[0]  # O(n log chunk), not O(n^2 / chunk)


def test_whitespace_only_and_empty_give_no_chunks():
    assert chunk_text("", by_chars(10)) == []
    assert chunk_text(" \n\t\r\n \u3000 ", by_chars(3)) == []


def test_offsets_map_back_with_crlf_tabs_and_non_ascii():
    text = "Café\tZürich.\r\nＴｏｋｙｏ 東京タワー。 😀 Ann e\u0301te.\r\n\r\nLast\tline!"
    for budget in range(1, 30):
        assert_exact_cover(text, chunk_text(text, by_chars(budget)), by_chars(budget))


# --- entities across chunk edges -----------------------------------------------------

NAMES = {"Ann Lee": "person", "Bob": "person", "Acme Corp": "organization", "Paris": "location",
         "New York City": "location", "Zoë Ørsted": "person", "東京": "location"}
FILLER = "the a of and saw met in at went to with from near about".split()
LABELS = [make_label("person"), make_label("organization"), make_label("location")]


def random_document(rng: random.Random, n_sentences: int) -> str:
    sentences = []
    for _ in range(n_sentences):
        words = []
        for _ in range(rng.randint(2, 12)):
            words.append(rng.choice(list(NAMES)) if rng.random() < 0.3 else rng.choice(FILLER))
        sep = rng.choice([" ", "  ", "\n", "\r\n", "\t", "\n\n"])
        sentences.append(" ".join(words).capitalize() + rng.choice(".!?") + sep)
    return "".join(sentences)


def gold_entities(text: str, engine: GoldEngine) -> list[tuple]:
    return [(m.start(), m.end(), NAMES[m.group()], m.group()) for m in engine.pattern.finditer(text)]


def as_tuples(doc):
    return [(e["start"], e["end"], e["label"], e["text"]) for e in doc["entities"]]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.integers(13, 60))
def test_property_entities_neither_lost_nor_duplicated_across_chunks(seed, n_sentences, budget):
    """A perfect engine over random documents: the extracted entities are exactly the gold ones,
    for any chunk budget at least as long as the longest sentence (names never straddle sentences)."""
    rng = random.Random(seed)
    text = random_document(rng, n_sentences)
    engine = GoldEngine(NAMES, tokens="words")
    longest = max((len(s.split()) for s in text.replace("!", ".").replace("?", ".").split(".")), default=0)
    chunk_tokens = max(budget, longest + 1)
    ex = Extractor(engine, LABELS, chunk_tokens=chunk_tokens)
    doc = ex.extract(text)
    check_spans(doc)
    assert as_tuples(doc) == gold_entities(text, engine)
    assert doc["counts"]["chunks"] == len(engine.calls[0])
    assert doc["counts"]["not_found"] == doc["counts"]["overlaps"] == doc["counts"]["parse_failures"] == 0


def test_many_chunks_entities_exact_at_every_edge():
    rng = random.Random(7)
    text = random_document(rng, 400)
    engine = GoldEngine(NAMES, tokens="words")
    doc = Extractor(engine, LABELS, chunk_tokens=40).extract(text)
    assert doc["counts"]["chunks"] > 50
    assert as_tuples(doc) == gold_entities(text, engine)


def test_single_word_entities_survive_the_whitespace_fallback():
    """One endless sentence (no terminator): chunks are cut at spaces, so one-word names stay whole."""
    names = {"Bob": "person", "Paris": "location", "東京": "location"}
    rng = random.Random(3)
    text = " ".join(rng.choice(list(names)) if rng.random() < 0.2 else rng.choice(FILLER) for _ in range(3000))
    engine = GoldEngine(names, tokens="words")
    doc = Extractor(engine, LABELS, chunk_tokens=25).extract(text)
    assert doc["counts"]["chunks"] >= 3000 // 25
    expected = [(m.start(), m.end(), names[m.group()], m.group()) for m in engine.pattern.finditer(text)]
    assert as_tuples(doc) == expected


def test_repeated_mentions_in_one_chunk_each_tagged_once():
    text = "Bob met Bob. Then Bob left Paris for Paris."
    engine = GoldEngine(NAMES)
    doc = Extractor(engine, LABELS, chunk_tokens=100).extract(text)
    assert [(e["start"], e["text"]) for e in doc["entities"]] == [(0, "Bob"), (8, "Bob"), (18, "Bob"),
                                                                  (27, "Paris"), (37, "Paris")]
