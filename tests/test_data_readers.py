"""CoNLL and JSONL readers on small hand-written files: schemes, layouts, offsets, bad input."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from samedge.data import read_conll, read_jsonl
from samedge.data.conll import ReadStats
from samedge.data.loading import load_documents
from samedge.errors import DataError, UserError


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def spans(doc):
    return [(doc["text"][e["start"]:e["end"]], e["label"]) for e in doc["entities"]]


def assert_offsets_exact(docs):
    for doc in docs:
        for e in doc["entities"]:
            assert doc["text"][e["start"]:e["end"]] == e["text"]


IOB2 = """-DOCSTART- O

John\tB-PER
Smith\tI-PER
visited\tO
New\tB-LOC
York\tI-LOC
.\tO

Acme\tB-ORG
Corp\tI-ORG
Widget\tB-ORG
"""


def test_iob2_token_first_tab(tmp_path):
    docs = read_conll(write(tmp_path, "a.conll", IOB2))
    assert [d["text"] for d in docs] == ["John Smith visited New York .", "Acme Corp Widget"]
    assert spans(docs[0]) == [("John Smith", "PER"), ("New York", "LOC")]
    # B- after I- of the same type starts a new entity.
    assert spans(docs[1]) == [("Acme Corp", "ORG"), ("Widget", "ORG")]
    assert docs[0]["entities"][1] == {"start": 19, "end": 27, "label": "LOC", "text": "New York"}
    assert_offsets_exact(docs)


def test_tag_first_is_detected(tmp_path):
    # MIT's .bio layout: tag<TAB>token, CRLF line ends.
    text = "O\twhat\r\nB-Actor\ttom\r\nI-Actor\thanks\r\nO\tmovies\r\n\r\nB-Year\t1990s\r\n"
    docs = read_conll(write(tmp_path, "mit.bio", text))
    assert [d["text"] for d in docs] == ["what tom hanks movies", "1990s"]
    assert spans(docs[0]) == [("tom hanks", "Actor")]
    assert spans(docs[1]) == [("1990s", "Year")]


def test_tag_column_can_be_forced(tmp_path):
    path = write(tmp_path, "x.txt", "O\tB-X\nO\tO\n")  # ambiguous: both columns look like tags
    assert read_conll(path, tag_column="last")[0]["text"] == "O O"
    assert spans(read_conll(path, tag_column="first")[0]) == []


def test_space_separated_with_extra_columns_and_docstart(tmp_path):
    # sec_filings layout: token POS chunk tag, IOB1.
    text = ("-DOCSTART- -X- -X- O\n\n"
            "Bank NNP - I-ORG\nof IN - I-ORG\nAmerica NNP - I-ORG\nlends VBZ - O\n"
            "to TO - O\nJohn NNP - I-PER\nMary NNP - B-PER\n")
    docs = read_conll(write(tmp_path, "fin.txt", text), scheme="iob1")
    assert len(docs) == 1
    assert spans(docs[0]) == [("Bank of America", "ORG"), ("John", "PER"), ("Mary", "PER")]


def test_iob1_is_detected_and_not_repaired(tmp_path):
    text = "Paris I-LOC\nand O\nLondon I-LOC\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # IOB1 starts entities with I-: no repair warning
        stats = ReadStats()
        docs = read_conll(write(tmp_path, "iob1.txt", text), stats=stats)
    assert spans(docs[0]) == [("Paris", "LOC"), ("London", "LOC")]
    assert stats.repaired == 0


def test_iob2_i_after_o_is_repaired_with_a_warning(tmp_path):
    text = "the\tO\nUnited\tB-LOC\nStates\tI-LOC\nand\tO\nNations\tI-ORG\nBank\tI-LOC\n"
    path = write(tmp_path, "bad.conll", text)
    stats = ReadStats()
    with pytest.warns(UserWarning, match=r"repaired 2 I- tags .*bad.conll:5"):
        docs = read_conll(path, scheme="iob2", stats=stats)
    # Repaired, not dropped: I- after O starts an entity, I- of another type too.
    assert spans(docs[0]) == [("United States", "LOC"), ("Nations", "ORG"), ("Bank", "LOC")]
    assert stats.repaired == 2
    assert stats.repaired_lines == [f"{path}:5", f"{path}:6"]


def test_iobes_tags_are_read(tmp_path):
    text = "S-PER\tAnn\nO\tmet\nB-ORG\tthe\nI-ORG\tRed\nE-ORG\tCross\n"
    docs = read_conll(write(tmp_path, "x.bioes", text))
    assert spans(docs[0]) == [("Ann", "PER"), ("the Red Cross", "ORG")]


def test_whitespace_around_tokens_and_empty_tokens(tmp_path):
    # BTC has emoji tokens with a trailing space, and empty tokens tagged O.
    text = "hi\tO\n😳 \tO\n\tO\nParis\tB-LOC\n\n\tO\n"
    with pytest.warns(UserWarning, match="dropped 2 empty tokens"):
        docs = read_conll(write(tmp_path, "btc.conll", text))
    assert docs[0]["text"] == "hi 😳 Paris"
    assert spans(docs[0]) == [("Paris", "LOC")]
    assert docs[1]["text"] == ""  # a sentence of empty tokens still counts
    assert_offsets_exact(docs)


def test_offsets_are_exact_for_unicode(tmp_path):
    text = "東京\tB-LOC\nで\tO\nJosé\tB-PER\nMüller\tI-PER\n👋🏽\tO\nZoë\tB-PER\n"
    docs = read_conll(write(tmp_path, "u.conll", text))
    assert spans(docs[0]) == [("東京", "LOC"), ("José Müller", "PER"), ("Zoë", "PER")]
    assert_offsets_exact(docs)


def test_utf8_bom_is_accepted(tmp_path):
    docs = read_conll(write(tmp_path, "bom.conll", "\ufeffRome\tB-LOC\n"))
    assert spans(docs[0]) == [("Rome", "LOC")]


# --- malformed input: one line, `file:line: what` ---------------------------------

def one_line_error(exc_info, path, line):
    message = str(exc_info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert isinstance(exc_info.value, UserError)
    return message


def test_single_column_line(tmp_path):
    path = write(tmp_path, "cols.conll", "John\tB-PER\nSmith\n")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "expected a token and a tag" in one_line_error(e, path, 2)


def test_inconsistent_column_count(tmp_path):
    path = write(tmp_path, "cols.txt", "John NNP B-PER\n\nNew York B-LOC extra\n")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "expected 3 columns (as on line 1), got 4" in one_line_error(e, path, 3)


def test_invalid_tag(tmp_path):
    path = write(tmp_path, "tag.conll", "John\tB-PER\nruns\tVERB\n")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "invalid tag 'VERB'" in one_line_error(e, path, 2)


def test_empty_token_inside_an_entity(tmp_path):
    path = write(tmp_path, "e.conll", "New\tB-LOC\n\tI-LOC\n")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "empty token tagged I-LOC" in one_line_error(e, path, 2)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "-DOCSTART- O\n\n"])
def test_empty_file(tmp_path, content):
    path = write(tmp_path, "empty.conll", content)
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert re.search(r"file is empty|no tokens found", one_line_error(e, path, 1))


def test_binary_file(tmp_path):
    path = write(tmp_path, "model.bin", b"John\tB-PER\n\x00\x01\x02\xff\xfe")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "binary file (NUL byte at byte offset 11)" in one_line_error(e, path, 2)


def test_utf16_file(tmp_path):
    path = write(tmp_path, "u16.conll", "John\tB-PER\n".encode("utf-16"))
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "UTF-16" in one_line_error(e, path, 1)


def test_invalid_utf8(tmp_path):
    path = write(tmp_path, "latin1.conll", "John\tB-PER\n\nJosé\tB-PER\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert "invalid UTF-8 at byte offset 15 (byte 0xe9)" in one_line_error(e, path, 3)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_conll(tmp_path / "nope.conll")
    with pytest.raises(UserError, match="is a directory"):
        read_conll(tmp_path)


# --- JSONL ---------------------------------------------------------------------

def jsonl(*objs):
    return "".join((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n" for o in objs)


def test_jsonl_reads_and_normalises(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl(
        {"id": "a", "text": "Ann lives in Köln 🏠.", "entities": [
            {"start": 13, "end": 17, "label": "location"}, {"start": 0, "end": 3, "label": "person"}]},
        "",
        {"text": "no entities here"}))
    docs = read_jsonl(path)
    assert [d["id"] for d in docs] == ["a", "d-3"]
    assert spans(docs[0]) == [("Ann", "person"), ("Köln", "location")]  # sorted by offset
    assert docs[1]["entities"] == []
    assert_offsets_exact(docs)


@pytest.mark.parametrize("line, what", [
    ('{"text": "abc", "entities": [{"start": 1, "end": 9, "label": "x"}]}', "outside the text"),
    ('{"text": "abc", "entities": [{"start": 0, "end": 1, "label": "x", "text": "b"}]}', "!= text[0:1]"),
    ('{"text": "abc", "entities": [{"start": "a", "end": 1, "label": "x"}]}', "integer start/end"),
    ('{"text": "abc", "entities": {}}', "must be a list"),
    ('{"entities": []}', "missing string field 'text'"),
    ('[1, 2]', "expected a JSON object"),
    ('{"text": "abc",', "invalid JSON"),
])
def test_jsonl_malformed(tmp_path, line, what):
    path = write(tmp_path, "bad.jsonl", jsonl({"text": "fine"}, line))
    with pytest.raises(DataError) as e:
        read_jsonl(path)
    assert what in one_line_error(e, path, 2)


def test_jsonl_gold_needs_entities(tmp_path):
    path = write(tmp_path, "gold.jsonl", jsonl({"text": "x"}))
    with pytest.raises(DataError, match=r"gold.jsonl:1: missing field 'entities'"):
        read_jsonl(path, need_entities=True)


def test_jsonl_binary_and_empty(tmp_path):
    with pytest.raises(DataError, match=r"b.jsonl:1: looks like a binary file"):
        read_jsonl(write(tmp_path, "b.jsonl", b"\x00\x00PK"))
    with pytest.raises(DataError, match=r"e.jsonl:1: file is empty"):
        read_jsonl(write(tmp_path, "e.jsonl", "\n"))


def test_load_documents_picks_the_reader(tmp_path):
    assert load_documents(write(tmp_path, "x.jsonl", jsonl({"text": "a"})))[0]["text"] == "a"
    assert load_documents(write(tmp_path, "x.conll", "a\tO\n"))[0]["text"] == "a"
    with pytest.raises(UserError, match="no such file"):
        load_documents(tmp_path / "missing.jsonl")
