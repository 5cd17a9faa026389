"""What `samedge extract` reads: files, directories, stdin and JSONL; strict UTF-8; one Failure per bad input."""

from __future__ import annotations

import codecs
import io
import json
import os
from pathlib import Path

import pytest

from samedge.errors import UserError
from samedge.extract.inputs import Document, Failure, iter_documents

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64


def read_all(*paths, **kw):
    return list(iter_documents([str(p) for p in paths], **kw))


def one(*paths, **kw):
    (item,) = read_all(*paths, **kw)
    return item


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- plain files ---------------------------------------------------------------------

def test_utf8_file_is_read_exactly(tmp_path):
    text = "Line one.\r\nTabs\there. Café 東京 😀 e\u0301\n"
    doc = one(write(tmp_path / "a.txt", text.encode()))
    assert doc == Document(str(tmp_path / "a.txt"), text)  # CRLF, tabs and NFD kept


def test_utf8_bom_is_removed(tmp_path):
    doc = one(write(tmp_path / "bom.txt", codecs.BOM_UTF8 + "Ann in Paris.".encode()))
    assert doc.text == "Ann in Paris."


def test_invalid_utf8_names_file_and_byte_offset(tmp_path):
    data = "Good text here.\nAnd then ".encode() + b"\xff\xfe bad" + " more.".encode()
    path = write(tmp_path / "bad.txt", data)
    failure = one(path)
    assert isinstance(failure, Failure)
    assert str(path) in failure.reason
    offset = data.index(bytes([0xFF]))
    assert f"byte offset {offset}" in failure.reason and "0xff" in failure.reason
    assert ":2:" in failure.reason  # the line too
    assert "\n" not in failure.reason


def test_invalid_utf8_offset_counts_the_bom(tmp_path):
    data = codecs.BOM_UTF8 + b"abc\xc3(" + b"def"
    failure = one(write(tmp_path / "bad.txt", data))
    assert "byte offset 6" in failure.reason


def test_truncated_multibyte_sequence_at_the_end(tmp_path):
    failure = one(write(tmp_path / "cut.txt", "price: 5 ".encode() + "€".encode()[:2]))
    assert "byte offset 9" in failure.reason


def test_errors_replace_decodes_with_u_fffd(tmp_path):
    data = b"Ann \xff\xfe lives in Paris."
    doc = one(write(tmp_path / "bad.txt", data), errors="replace")
    assert doc.text == "Ann \ufffd\ufffd lives in Paris."
    assert doc.text.index("Paris") == 16  # offsets refer to the decoded text


def test_unknown_errors_mode_is_refused():
    with pytest.raises(UserError, match="strict or replace"):
        read_all("-", errors="ignore")


def test_empty_file_is_a_failure(tmp_path):
    failure = one(write(tmp_path / "empty.txt", b""))
    assert isinstance(failure, Failure) and failure.reason == f"{tmp_path / 'empty.txt'}: file is empty"


def test_whitespace_only_file_is_a_document(tmp_path):
    doc = one(write(tmp_path / "ws.txt", b" \n\t\r\n  \n"))
    assert isinstance(doc, Document) and doc.text == " \n\t\r\n  \n"


def test_binary_png_is_refused(tmp_path):
    failure = one(write(tmp_path / "image.png", PNG))
    assert isinstance(failure, Failure)
    assert "binary" in failure.reason and str(tmp_path / "image.png") in failure.reason
    assert isinstance(one(tmp_path / "image.png", errors="replace"), Failure)  # replace does not let it through


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_refused(tmp_path, codec):
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[codec]
    failure = one(write(tmp_path / "u16.txt", bom + "Ann in Paris.".encode(codec)))
    assert isinstance(failure, Failure) and "UTF-16" in failure.reason and "iconv" in failure.reason


def test_missing_path(tmp_path):
    failure = one(tmp_path / "nope.txt")
    assert failure.reason == f"{tmp_path / 'nope.txt'}: no such file"


def test_unreadable_file_chmod(tmp_path):
    path = write(tmp_path / "secret.txt", b"hidden")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reads (see the patched test below)")
        failure = one(path)
        assert failure.reason == f"{path}: permission denied"
    finally:
        path.chmod(0o644)


def test_unreadable_file_patched(tmp_path, monkeypatch):
    path = write(tmp_path / "secret.txt", b"hidden")
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    items = read_all(path, write(tmp_path / "ok.txt", b"fine"))
    assert [type(i) for i in items] == [Failure, Document]
    assert items[0].reason == f"{path}: permission denied"


@pytest.mark.parametrize("make", ["long_name", "symlink_loop", "io_error"])
def test_other_os_errors_are_one_failure_not_a_crash(tmp_path, monkeypatch, make):
    if make == "long_name":
        path = tmp_path / ("x" * 300 + ".txt")
    elif make == "symlink_loop":
        path = tmp_path / "loop.txt"
        path.symlink_to(path)
    else:
        path = write(tmp_path / "disk.txt", b"data")
        monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    failure = one(path)
    assert isinstance(failure, Failure) and failure.reason.startswith(str(path)), failure


def test_a_directory_given_as_file_is_read_recursively(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    write(tmp_path / "d" / "b.txt", b"B")
    write(tmp_path / "d" / "e" / "a.txt", b"A")
    write(tmp_path / "d" / "c.md", b"C")
    assert [d.text for d in read_all(tmp_path / "d")] == ["B", "C", "A"]  # sorted paths
    assert [d.text for d in read_all(tmp_path / "d", glob="*.txt")] == ["B", "A"]
    failure = one(tmp_path / "d", glob="*.pdf")
    assert "no files match" in failure.reason


def test_mixed_good_and_bad_inputs_keep_order_and_all_are_reported(tmp_path):
    paths = [write(tmp_path / "1.txt", b"one"), tmp_path / "missing.txt", write(tmp_path / "3.txt", b"\xff"),
             write(tmp_path / "4.txt", b""), write(tmp_path / "5.png", PNG), write(tmp_path / "6.txt", b"six")]
    items = read_all(*paths)
    assert [type(i).__name__ for i in items] == ["Document", "Failure", "Failure", "Failure", "Failure", "Document"]
    assert [i.id for i in items] == [str(p) for p in paths]


# --- stdin ---------------------------------------------------------------------------

class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_stdin_is_read_as_bytes_and_decoded_strictly(monkeypatch):
    monkeypatch.setattr("sys.stdin", FakeStdin("Ann in Paris.\r\n東京".encode()))
    assert one("-") == Document("<stdin>", "Ann in Paris.\r\n東京")
    monkeypatch.setattr("sys.stdin", FakeStdin(b"abc\x80"))
    failure = one("-")
    assert failure.reason.startswith("<stdin>:1: invalid UTF-8 at byte offset 3")


def test_stdin_jsonl(monkeypatch):
    monkeypatch.setattr("sys.stdin", FakeStdin(b'{"id": "x", "text": "Ann"}\n'))
    assert one("-", jsonl=True) == Document("x", "Ann")


# --- JSONL ---------------------------------------------------------------------------

def test_jsonl_records_ids_and_bad_lines(tmp_path):
    lines = [json.dumps({"id": "a", "text": "Ann in Paris."}), "", json.dumps({"text": "no id"}), "{not json",
             json.dumps(["a list"]), json.dumps({"id": 7, "text": "numeric id"}), json.dumps({"id": "t", "text": 5}),
             json.dumps({"id": "e", "text": ""})]
    path = write(tmp_path / "in.jsonl", ("\r\n".join(lines) + "\r\n").encode())
    items = read_all(path)
    assert [(type(i).__name__, i.id) for i in items] == [
        ("Document", "a"), ("Document", f"{path}:3"), ("Failure", f"{path}:4"), ("Failure", f"{path}:5"),
        ("Document", "7"), ("Failure", f"{path}:7"), ("Document", "e")]
    assert "invalid JSON" in items[2].reason and "string 'text'" in items[3].reason
    assert items[0].text == "Ann in Paris."  # the CR of CRLF is not part of the record


def test_jsonl_text_with_unicode_line_separators_is_one_record(tmp_path):
    text = "Ann\u2028Lee\u2029in\x85Paris\x1c\x1d\x1e\u000b\u000cend"
    path = write(tmp_path / "in.jsonl", (json.dumps({"id": "sep", "text": text}, ensure_ascii=False) + "\n").encode())
    assert read_all(path) == [Document("sep", text)]


def test_jsonl_lone_surrogate_is_refused_or_replaced(tmp_path):
    path = write(tmp_path / "in.jsonl", b'{"id": "s", "text": "Ann \\ud83d Paris"}\n{"id": "ok", "text": "fine"}\n')
    items = read_all(path)
    assert isinstance(items[0], Failure) and "lone surrogate" in items[0].reason and f"{path}:1" in items[0].reason
    assert items[1] == Document("ok", "fine")
    doc = read_all(path, errors="replace")[0]
    assert doc.text == "Ann \ufffd Paris" and doc.text.encode("utf-8")


def test_jsonl_invalid_utf8_is_a_file_failure(tmp_path):
    failure = one(write(tmp_path / "in.jsonl", b'{"text": "a\xff"}\n'))
    assert "invalid UTF-8 at byte offset 11" in failure.reason


def test_jsonl_forced_for_other_suffixes_and_off_for_jsonl(tmp_path):
    path = write(tmp_path / "in.txt", b'{"id": "a", "text": "Ann"}\n')
    assert one(path, jsonl=True) == Document("a", "Ann")
    assert one(path).text == '{"id": "a", "text": "Ann"}\n'
    path = write(tmp_path / "raw.jsonl", b"just text\n")
    assert one(path, jsonl=False).text == "just text\n"
