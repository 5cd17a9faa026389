"""The labeled data samedge ships: every profile's dev set and sample texts, and the demo's gold
(examples/*.gold.jsonl), checked for shape, offsets and labels; and `samedge eval` over a gold
made of several files, as `make demo` runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from samedge.cli import main
from samedge.data.jsonl import read_jsonl
from samedge.targets import list_targets, load_target, shipped_names
from tests.bundle_fixtures import REPO

MIN_DEV, MIN_TEXTS = 30, 100


def check_documents(path: Path, labels: set[str]) -> list[dict]:
    """Each line is {"id", "text", "entities"}; every entity's text is text[start:end], not cut
    inside a word, not overlapping the next, and labeled with one of ``labels``."""
    docs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        doc = json.loads(line)
        assert set(doc) == {"id", "text", "entities"}, (path, lineno)
        text, prev_end = doc["text"], 0
        for e in doc["entities"]:
            where = (path.name, lineno, e)
            assert set(e) == {"start", "end", "label", "text"}, where
            assert 0 <= e["start"] < e["end"] <= len(text) and text[e["start"]:e["end"]] == e["text"], where
            assert e["text"] == e["text"].strip(), where
            assert e["start"] >= prev_end, where  # in text order, no overlaps
            assert e["start"] == 0 or not (text[e["start"] - 1].isalnum() and text[e["start"]].isalnum()), where
            assert e["end"] == len(text) or not (text[e["end"] - 1].isalnum() and text[e["end"]].isalnum()), where
            assert e["label"] in labels, where
            prev_end = e["end"]
        docs.append(doc)
    ids = [d["id"] for d in docs]
    assert len(set(ids)) == len(ids), path
    assert read_jsonl(path, need_entities=True)  # samedge's own reader takes it too
    return docs


@pytest.mark.parametrize("name", shipped_names())
def test_every_shipped_profile_has_a_dev_set_and_enough_texts(name):
    target = load_target(name)
    assert target.dev is not None and target.dev.name == f"{name}.dev.jsonl" and target.dev.is_file()
    docs = check_documents(target.dev, {lab.tag for lab in target.labels})
    assert len(docs) >= MIN_DEV
    assert len({d["text"] for d in docs}) == len(docs)
    assert sum(len(d["entities"]) for d in docs) >= len(docs)
    used = {e["label"] for d in docs for e in d["entities"]}
    assert used == {lab.tag for lab in target.labels}, f"{name}: labels never used in dev: {set(target.labels) - used}"
    assert len(target.texts) >= MIN_TEXTS and len(set(target.texts)) == len(target.texts)
    assert not {d["text"] for d in docs} & set(target.texts)  # dev sentences are not also sample texts


def test_dev_sets_are_package_data():
    """pyproject ships the dev sets and texts files beside the profiles (a wheel would lack them otherwise)."""
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["samedge"]
    for t in list_targets():
        rel = t.dev.relative_to(REPO / "samedge")
        assert any(rel.match(pattern) for pattern in data), (rel, data)


EXAMPLES = REPO / "examples"


def test_the_demo_gold_matches_what_extract_reads(monkeypatch):
    """One gold document per example, with the id and text `samedge extract examples/ --glob '*.txt'`
    gives it (run from the repository, as `make demo` does), labeled with the legal profile's labels."""
    from samedge.extract.inputs import Document, iter_documents

    monkeypatch.chdir(REPO)
    read = {d.id: d.text for d in iter_documents(["examples/"], glob="*.txt") if isinstance(d, Document)}
    labels = {lab.tag for lab in load_target("legal").labels}
    gold = {}
    for path in sorted(EXAMPLES.glob("*.gold.jsonl")):
        docs = check_documents(path, labels)
        assert len(docs) == 1 and docs[0]["id"] == f"examples/{path.name[:-len('.gold.jsonl')]}.txt"
        gold[docs[0]["id"]] = docs[0]["text"]
    assert gold == read


def test_eval_reads_a_directory_of_gold_files(tmp_path):
    """`samedge eval --gold examples/` (the demo's step): every *.gold.jsonl file; a perfect
    prediction scores 100, one with a label renamed loses exactly those entities."""
    gold = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.gold.jsonl"))]
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(d) + "\n" for d in gold))
    result = CliRunner().invoke(main, ["eval", "--gold", str(EXAMPLES), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    n = sum(len(d["entities"]) for d in gold)
    assert report["documents"] == 3 and report["micro"]["tp"] == n and report["micro"]["f1"] == 1.0
    for d in gold:
        d["entities"] = [dict(e, label="PER") if e["label"] == "person" else e for e in d["entities"]]
    pred.write_text("".join(json.dumps(d) + "\n" for d in gold))
    repeated = ["--gold", str(EXAMPLES / "court_ruling.gold.jsonl"), "--gold", str(EXAMPLES / "employment_memo.gold.jsonl"),
                "--gold", str(EXAMPLES / "lease_agreement.gold.jsonl")]
    report = json.loads(CliRunner().invoke(main, ["eval", *repeated, "--pred", str(pred), "--json"]).output)
    persons = report["per_label"]["person"]["support"]
    assert report["micro"]["tp"] == n - persons and report["per_label"]["PER"]["fp"] == persons
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["eval", "--gold", str(empty), "--pred", str(pred)])
    assert result.exit_code == 2 and "without *.gold.jsonl files" in result.output
