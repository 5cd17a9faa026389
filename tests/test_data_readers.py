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


# --- readers of the domains added on 2026-12-02 ----------------------------------------

from samedge.data.finer_ord import read_finer_ord  # noqa: E402
from samedge.data.hipe import read_hipe  # noqa: E402
from samedge.data.litbank import read_litbank  # noqa: E402
from samedge.data.snips import read_snips  # noqa: E402
from samedge.data.spans import squeeze_spaces  # noqa: E402
from samedge.data.tasteset import parse_span, read_tasteset  # noqa: E402


def test_squeeze_spaces_moves_offsets_and_trims_spans():
    text, spans = squeeze_spaces("  Is  Babar:\nKing  playing ", [(4, 18, "movie"), (19, 26, "verb")])
    assert text == "Is Babar: King playing"
    assert [text[s:e] for s, e, _ in spans] == ["Babar: King", "playing"]
    with pytest.raises(ValueError):
        squeeze_spaces("a   b", [(1, 3, "x")])


HIPE = ("TOKEN\tNE-COARSE-LIT\tNE-COARSE-METO\tNE-FINE-LIT\tNE-FINE-METO\tNE-FINE-COMP\tNE-NESTED\t"
        "NEL-LIT\tNEL-METO\tMISC\n"
        "# hipe2022:document_id = doc-1\n"
        "# hipe2022:dataset = topres19th\n"
        "The\tO\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "Hon\tB-pers\t_\t_\t_\t_\t_\t_\t_\tNoSpaceAfter\n"
        ".\tI-pers\t_\t_\t_\t_\t_\t_\t_\tEndOfSentence\n"
        "Peter\tI-pers\t_\t_\t_\t_\t_\t_\t_\tNoSpaceAfter\n"
        ",\tO\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "of\tO\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "Poole\tB-LOC\t_\t_\t_\t_\t_\t_\t_\tNoSpaceAfter|EndOfSentence\n"
        "Left\tO\t_\t_\t_\t_\t_\t_\t_\tEndOfLine\n"
        "\n"
        "# hipe2022:document_id = doc-2\n"
        "Next\tO\t_\t_\t_\t_\t_\t_\t_\t_\n")


def test_hipe_sentences_end_at_end_of_sentence_and_documents(tmp_path):
    docs = read_hipe(write(tmp_path, "h.tsv", HIPE), no_space_after=True)
    assert [d["text"] for d in docs] == ["The Hon. Peter, of Poole", "Left", "Next"]
    assert read_hipe(write(tmp_path, "h.tsv", HIPE))[0]["text"] == "The Hon . Peter , of Poole"
    assert spans(docs[0]) == [("Hon. Peter", "pers"), ("Poole", "LOC")]
    assert_offsets_exact(docs)


def test_hipe_cuts_inside_a_mention_only_on_request(tmp_path):
    with pytest.warns(UserWarning, match="1 I- tags start a mention"):
        docs = read_hipe(write(tmp_path, "h.tsv", HIPE), whole_mentions=False, lowercase=True)
    assert [d["text"] for d in docs][:2] == ["The Hon .", "Peter , of Poole"]
    assert spans(docs[1]) == [("Peter", "pers"), ("Poole", "loc")]


@pytest.mark.parametrize("line, what", [
    ("Hon\tB-pers\t_\n", "columns"),
    ("Hon\tX-pers\t_\t_\t_\t_\t_\t_\t_\t_\n", "invalid tag"),
    ("Hon\t_\t_\t_\t_\t_\t_\t_\t_\t_\n", "not annotated"),
])
def test_hipe_malformed_line_names_file_and_line(tmp_path, line, what):
    lines = HIPE.splitlines(keepends=True)
    lines[4] = line
    path = write(tmp_path, "bad.tsv", "".join(lines))
    with pytest.raises(UserError, match=re.escape(f"{path}:5: ") + f".*{what}"):
        read_hipe(path)


LITBANK = ("Sir\tB-PER\tB-PER\tO\tO\t\n"
           "Walter\tO\tI-PER\tO\tO\t\n"
           "of\tO\tO\tO\tO\t\n"
           "Kellynch\tB-FAC\tO\tO\tO\t\n"
           "Hall\tI-FAC\tO\tO\tO\t\n"
           "\n"
           "the\tB-PER\tO\tO\tO\t\n"
           "man\tI-PER\tO\tO\tO\t\n"
           "\n")


def test_litbank_keeps_outermost_mentions(tmp_path):
    docs = read_litbank(write(tmp_path, "b.tsv", LITBANK))
    assert [d["text"] for d in docs] == ["Sir Walter of Kellynch Hall", "the man"]
    assert spans(docs[0]) == [("Sir Walter", "PER"), ("Kellynch Hall", "FAC")]
    nested = read_litbank(write(tmp_path, "b.tsv", LITBANK), layers="all")
    assert spans(nested[0]) == [("Sir", "PER"), ("Sir Walter", "PER"), ("Kellynch Hall", "FAC")]
    assert_offsets_exact(docs + nested)


def test_litbank_malformed_line(tmp_path):
    path = write(tmp_path, "b.tsv", LITBANK.replace("Hall\tI-FAC\tO\tO\tO\t\n", "Hall\tI-FAC\tO\n"))
    with pytest.raises(UserError, match=re.escape(f"{path}:5: ")):
        read_litbank(path)


FINER = ("gold_label,gold_token,doc_idx,sent_idx\n"
         "5,Bank,0,0\n6,of,0,0\n6,Kenya,0,0\n0,\"rose,\",0,0\n"
         "4,York,0,1\n0,fell,0,1\n1,Ann,1,0\n")


def test_finer_ord_integer_tags_and_sentences(tmp_path):
    docs = read_finer_ord(write(tmp_path, "f.csv", FINER))
    assert [d["text"] for d in docs] == ["Bank of Kenya rose,", "York fell", "Ann"]
    # 4 = I-LOC with no B-LOC before it starts a mention, as SOURCE.md counts it.
    assert [spans(d) for d in docs] == [[("Bank of Kenya", "ORG")], [("York", "LOC")], [("Ann", "PER")]]


def test_finer_ord_malformed_line(tmp_path):
    path = write(tmp_path, "f.csv", FINER.replace("4,York", "9,York"))
    with pytest.raises(UserError, match=re.escape(f"{path}:6: ") + ".*0-6"):
        read_finer_ord(path)


SNIPS = {"GetWeather": [
    {"data": [{"text": "will it  rain in "}, {"text": "Paris ", "entity": "city"},
              {"text": "tomorrow\nnight", "entity": "timeRange"}]},
    {"data": [{"text": "play "}, {"text": "Pop Punk \ud83c\udf55", "entity": "playlist"}]},
]}


def test_snips_chunks_become_spans(tmp_path):
    docs = read_snips(write(tmp_path, "s.json", json.dumps(SNIPS)))
    assert docs[0]["text"] == "will it rain in Paris tomorrow night"
    assert spans(docs[0]) == [("Paris", "city"), ("tomorrow night", "timeRange")]
    assert spans(docs[1]) == [("Pop Punk \U0001F355", "playlist")]


def test_snips_reads_a_surrogate_pair_written_as_utf8(tmp_path):
    # The CESU-8 bytes of upstream's PlayMusic file: one emoji as two 3-byte surrogates.
    raw = '{"I": [{"data": [{"text": "x \\u0000"}]}]}'.replace("\\u0000", "\ud83c\udf55")
    path = write(tmp_path, "s.json", raw.encode("utf-8", errors="surrogatepass"))
    assert read_snips(path)[0]["text"] == "x \U0001F355"


@pytest.mark.parametrize("content, where", [
    ('{"I": [{"data": [{"text": "a"}]},\n  {"data": [}]}', ":2: invalid JSON"),
    ('{"I": [{"data": [{"entity": "city"}]}]}', ": I query 0: chunk 0"),
    ('{"I": [{"data": [{"text": "  ", "entity": "city"}]}]}', ": I query 0: a city span"),
])
def test_snips_malformed_input(tmp_path, content, where):
    path = write(tmp_path, "s.json", content)
    with pytest.raises(UserError, match=re.escape(f"{path}{where}")):
        read_snips(path)


def tasteset_csv(text, entities):
    return "ingredients,ingredients_entities\n" + '"' + text.replace('"', '""') + '","' + \
        json.dumps(entities).replace('"', '""') + '"\n'


def test_tasteset_discontinuous_mention_becomes_pieces(tmp_path):
    text = "1 cup cheese (or Gouda)\n\n2 packs vanilla pudding (or chocolate)"
    ents = [{"span": "[(0, 1), ]", "type": "QUANTITY", "entity": "1"},
            {"span": "[(6, 12), (17, 22), ]", "type": "FOOD", "entity": "cheese Gouda"},
            {"span": "[(33, 48), ]", "type": "FOOD", "entity": "vanilla pudding"},
            {"span": "[(41, 48), (53, 62), ]", "type": "FOOD", "entity": "pudding chocolate"}]
    docs = read_tasteset(write(tmp_path, "t.csv", tasteset_csv(text, ents)), id_prefix="t")
    assert [d["id"] for d in docs] == ["t/r0000-0", "t/r0000-2"]  # the blank line is no document
    assert spans(docs[0]) == [("1", "QUANTITY"), ("cheese", "FOOD"), ("Gouda", "FOOD")]
    # A piece inside a contiguous mention ("pudding" of "vanilla pudding") is dropped: flat entities.
    assert spans(docs[1]) == [("vanilla pudding", "FOOD"), ("chocolate", "FOOD")]
    assert_offsets_exact(docs)


def test_parse_span_is_strict():
    assert parse_span("[(8, 21), (37, 41), ]") == [(8, 21), (37, 41)]
    for bad in ("[]", "(1, 2)", "[(2, 1), ]", "[(1, x), ]"):
        with pytest.raises(ValueError):
            parse_span(bad)


def test_tasteset_malformed_row_names_file_and_line(tmp_path):
    path = write(tmp_path, "t.csv", tasteset_csv("1 cup\nsugar", [{"span": "[(0, 99), ]", "type": "FOOD"}]))
    with pytest.raises(UserError, match=re.escape(f"{path}:3: recipe 0: ") + ".*runs past"):
        read_tasteset(path)
