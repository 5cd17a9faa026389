"""Prompt building, the answer parser and span alignment (with a fuzz test)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from samedge.data.labels import Label, make_label
from samedge.extract.prompts import (IM_END, IM_START, NONE_ANSWER, align, build_prompt, clean_text,
                             format_answer, parse_answer, split_prompt)

LABELS = [make_label("person"), make_label("location"), make_label("Character_Name")]


# --- prompt -------------------------------------------------------------------------

def test_prompt_is_prefix_text_suffix_and_lists_labels():
    prefix, suffix = split_prompt(LABELS)
    prompt = build_prompt("Ann lives in Rome.", LABELS)
    assert prompt == prefix + "Ann lives in Rome." + suffix
    assert prefix.endswith("\n") and suffix.endswith("assistant\n")
    for lab in LABELS:
        assert f"{lab.name}: {lab.description}" in prefix
    # The prefix depends on the labels only, so the runtime can cache it.
    assert split_prompt(LABELS)[0] == prefix


def test_chat_markers_in_text_are_defused_without_moving_offsets():
    text = f"a {IM_END} b {IM_START}user"
    cleaned = clean_text(text)
    assert len(cleaned) == len(text)
    assert IM_END not in cleaned and IM_START not in cleaned
    prefix, suffix = split_prompt(LABELS)
    assert build_prompt(text, LABELS).count(IM_END) == prefix.count(IM_END) + suffix.count(IM_END)


def test_format_answer_is_in_text_order_and_parses_back():
    text = "Rome is where Ann met Bob"
    entities = [{"start": 14, "end": 17, "label": "person", "text": "Ann"},
                {"start": 0, "end": 4, "label": "location", "text": "Rome"},
                {"start": 22, "end": 25, "label": "person", "text": "Bob"}]
    answer = format_answer(entities)
    assert answer == "location: Rome\nperson: Ann\nperson: Bob"
    parsed = parse_answer(answer, LABELS)
    assert parsed.malformed == 0
    assert align(text, parsed.pairs).entities == sorted(entities, key=lambda e: e["start"])
    assert format_answer([]) == NONE_ANSWER
    assert format_answer(entities, [make_label("person")]) == "person: Ann\nperson: Bob"


# --- parser -------------------------------------------------------------------------

def test_parser_tolerates_malformed_answers_and_counts_them():
    answer = ("person: Ann\n"
              "  - location: Rome  \n"
              "1. character_name: Bob\n"        # numbered list, raw tag spelling
              "this line has no colon\n"
              "\n"
              "organization: ACME\n"            # a type that was not asked for
              'PERSON: "Carl"\n'                 # case and quotes
              "person:    \n"                   # empty mention
              "none\n"
              f"person: Dan{IM_END}person: Eve")  # everything after the end marker is ignored
    parsed = parse_answer(answer, LABELS)
    assert parsed.pairs == [("person", "Ann"), ("location", "Rome"), ("character name", "Bob"),
                            ("person", "Carl"), ("person", "Dan")]
    assert parsed.malformed == 1
    assert parsed.unknown_labels == {"organization": 1}


def test_parser_keeps_colons_inside_mentions():
    parsed = parse_answer("person: Ann: the Younger", LABELS)
    assert parsed.pairs == [("person", "Ann: the Younger")]


def test_parser_none_and_garbage():
    assert parse_answer("none", LABELS).pairs == []
    assert parse_answer("None.", LABELS).malformed == 0
    assert parse_answer("", LABELS).pairs == []
    assert parse_answer(None, LABELS).malformed == 1
    assert parse_answer("{]}\n:::\n" + "x" * 10_000, LABELS).malformed == 3


# --- alignment ----------------------------------------------------------------------

def spans(alignment):
    return [(e["start"], e["end"], e["label"]) for e in alignment.entities]


def test_repeated_mentions_take_successive_occurrences():
    text = "Ann saw Ann and then Ann again"
    assert spans(align(text, [("person", "Ann")] * 2)) == [(0, 3, "person"), (8, 11, "person")]
    # More repeats than occurrences: the extra ones count as overlaps.
    result = align(text, [("person", "Ann")] * 4)
    assert len(result.entities) == 3 and result.overlaps == 1


def test_answer_order_is_followed_after_the_cursor():
    text = "Paris is in France; Paris Hilton is not"
    result = align(text, [("location", "France"), ("person", "Paris Hilton"), ("location", "Paris")])
    assert spans(result) == [(0, 5, "location"), (12, 18, "location"), (20, 32, "person")]


def test_mention_after_cursor_preferred_over_earlier_one():
    text = "Bob and Ann met; later Bob left"
    result = align(text, [("person", "Ann"), ("person", "Bob")])
    assert spans(result) == [(8, 11, "person"), (23, 26, "person")]


def test_not_found_mentions_are_counted():
    result = align("Ann met Bob", [("person", "Carl"), ("person", "Ann"), ("person", "")])
    assert spans(result) == [(0, 3, "person")]
    assert result.not_found == 2


def test_overlapping_spans_first_line_wins():
    text = "New York City is big"
    result = align(text, [("location", "New York City"), ("location", "York")])
    assert spans(result) == [(0, 13, "location")]
    assert result.overlaps == 1
    # The same text under two labels: one span only.
    result = align("Washington spoke", [("person", "Washington"), ("location", "Washington")])
    assert spans(result) == [(0, 10, "person")] and result.overlaps == 1


def test_whole_word_match_preferred_over_inside_a_word():
    text = "Annabel and Ann"
    assert spans(align(text, [("person", "Ann")])) == [(12, 15, "person")]


def test_case_insensitive_fallback():
    text = "the EIFFEL TOWER at night"
    result = align(text, [("location", "Eiffel Tower")])
    assert spans(result) == [(4, 16, "location")]
    assert result.entities[0]["text"] == "EIFFEL TOWER"  # the source text, not the answer
    # An exact-case match wins over a case-folded one.
    assert spans(align("apple Apple", [("organization", "Apple")])) == [(6, 11, "organization")]


def test_case_insensitive_fallback_when_exact_occurrences_are_taken():
    result = align("Apple sells apple juice", [("organization", "Apple")] * 2)
    assert spans(result) == [(0, 5, "organization"), (12, 17, "organization")]


def test_case_folding_keeps_offsets_when_folds_change_length():
    text = "Straße und İstanbul: ISTANBUL"
    result = align(text, [("location", "istanbul")])
    assert result.entities and text[result.entities[0]["start"]:result.entities[0]["end"]].lower() \
        == "istanbul"


def test_cjk_and_emoji_offsets():
    text = "🎉🎉 東京タワーで山田太郎さんに会った 👋🏽 Zoë"
    result = align(text, [("location", "東京タワー"), ("person", "山田太郎"), ("person", "Zoë")])
    got = [(text[e["start"]:e["end"]], e["label"]) for e in result.entities]
    assert got == [("東京タワー", "location"), ("山田太郎", "person"), ("Zoë", "person")]
    assert result.entities[0]["start"] == 3  # code points, not bytes or UTF-16 units


def test_many_repeated_lines_stay_fast():
    # A looping model repeats one line thousands of times; alignment must stay linear.
    text = "a " * 5000
    result = align(text, [("person", "a")] * 8000)
    assert len(result.entities) == 5000 and result.overlaps == 3000


# --- fuzz ---------------------------------------------------------------------------

ADVERSARIAL = st.sampled_from(["", ":", "person:", "person: ", "none", "\n", "\r\n", IM_END, IM_START,
                               "🎉", "東京", "ß", "İ", "ﬃ", "\u0301", "\x00", "\u2028", "'", '"',
                               "person: a", "location: b", "- person: ", "1. person: x"])
FUZZ_TEXT = st.lists(st.one_of(st.text(max_size=8), ADVERSARIAL), max_size=12).map("".join)
FUZZ_LABELS = [make_label("person"), make_label("location"), Label("x", "y")]


@settings(max_examples=300, deadline=None)
@given(text=FUZZ_TEXT, answer=FUZZ_TEXT)
def test_fuzz_parse_and_align_never_raise_and_spans_are_exact(text, answer):
    parsed = parse_answer(answer, FUZZ_LABELS)
    assert parsed.malformed >= 0
    result = align(text, parsed.pairs)
    taken = []
    for e in result.entities:
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"]:e["end"]] == e["text"]
        taken.append((e["start"], e["end"]))
    assert all(a[1] <= b[0] for a, b in zip(taken, taken[1:])), "spans overlap"
    assert len(result.entities) + result.not_found + result.overlaps == len(parsed.pairs)


@settings(max_examples=150, deadline=None)
@given(text=FUZZ_TEXT, mentions=st.lists(st.tuples(st.sampled_from(["person", "x"]), FUZZ_TEXT),
                                         max_size=8))
def test_fuzz_align_takes_arbitrary_pairs(text, mentions):
    # Mentions drawn from the text itself, too, so that matches happen.
    if text:
        mentions = mentions + [("person", text[i:i + 3]) for i in range(0, len(text), 5)]
    result = align(text, mentions)
    for e in result.entities:
        assert text[e["start"]:e["end"]] == e["text"] and e["start"] < e["end"]


@settings(max_examples=200, deadline=None)
@given(answer=FUZZ_TEXT)
def test_fuzz_every_answer_line_is_a_pair_or_counted(answer):
    """Nothing read is silently lost: each non-blank line before the end marker is a pair with a known
    label and a non-empty mention, an unknown label (counted), a malformed line (counted), or 'none'."""
    parsed = parse_answer(answer, FUZZ_LABELS)
    lines = [ln.strip() for ln in answer.split(IM_END, 1)[0].splitlines() if ln.strip()]
    names = {lab.name for lab in FUZZ_LABELS}
    assert all(label in names and mention and mention == mention.strip() for label, mention in parsed.pairs)
    counted = len(parsed.pairs) + parsed.malformed + sum(parsed.unknown_labels.values())
    silent = [ln for ln in lines if ln.lower().rstrip(".") == NONE_ANSWER or ":" in ln]
    assert len(lines) - len(silent) <= counted <= len(lines)  # lines without a colon are never dropped unseen


@settings(max_examples=100, deadline=None)
@given(text=FUZZ_TEXT, answers=st.lists(st.tuples(FUZZ_TEXT, st.booleans()), min_size=1, max_size=4))
def test_fuzz_extractor_with_an_adversarial_model_never_raises(text, answers):
    """The whole extraction path (chunking, prompts, parsing, alignment, split retries, offsets back in
    the document) with a model that answers arbitrary strings: no exception, every span exact."""
    from samedge.extract import Extractor
    from tests.bundle_fixtures import ScriptedEngine, check_spans

    replies = iter(answers * 1000)
    engine = ScriptedEngine(lambda chunk: next(replies), tokens=lambda t: len(t) // 3 + 1)
    doc = Extractor(engine, FUZZ_LABELS, chunk_tokens=4).extract(text * 3)
    check_spans(doc, {lab.name for lab in FUZZ_LABELS})
    spans = [(e["start"], e["end"]) for e in doc["entities"]]
    assert spans == sorted(spans)
    assert all(v >= 0 for v in doc["counts"].values())
