"""Label Studio: exports read as labeled documents (everywhere load_documents reads), malformed
exports refused in one line naming the file and the task, and `extract --format labelstudio`
writing a valid, atomic JSON array that reads back to the same entities."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from samedge.extract.api import run_extract
from samedge.data.labelstudio import LabelStudioWriter, labeling_config, read_labelstudio, to_task
from samedge.data.labels import make_label
from samedge.data.loading import load_documents
from samedge.errors import DataError, UserError
from samedge.extract import Extractor
from tests.bundle_fixtures import (FOUND_SENTENCES, GoldEngine, assert_one_line_error, cli_env,  # noqa: F401
                                   real_bundle, run_cli)

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"
EXPORT = FIXTURES / "export.json"


def ents(doc):
    return [(e["start"], e["end"], e["label"], e["text"]) for e in doc["entities"]]


def test_export_reads_as_documents():
    docs = load_documents(EXPORT, need_entities=True)
    assert [d["id"] for d in docs] == ["101", "memo-7", "103"]  # data.id wins over the task id
    assert ents(docs[0]) == [(4, 14, "court", "High Court"), (18, 24, "location", "London"),
                             (50, 58, "organization", "Acme Ltd")]  # the prediction on this task is not read
    # The cancelled annotation is skipped; offsets after the emoji count code points.
    assert ents(docs[1]) == [(13, 22, "organization", "Müller AG"), (37, 44, "person", "Ann Lee")]
    assert docs[2]["entities"] == [] and docs[2]["text"] == "No entities here."


def test_jsonl_named_json_still_reads_as_jsonl(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps({"id": "x", "text": "Ann", "entities": [{"start": 0, "end": 3, "label": "person"}]}))
    assert ents(load_documents(path)[0]) == [(0, 3, "person", "Ann")]


@pytest.mark.parametrize("name, needles", [
    ("missing_value.json", ["task id 101", "result 1 has no 'value'"]),
    ("overlap.json", ["task id 101", "overlap"]),
    ("past_end.json", ["task id 102", "span [37, 60) outside the text (length 45)"]),
    ("text_mismatch.json", ["task id 101", "'High court' != text[4:14] 'High Court'"]),
    ("two_annotators.json", ["task id 101", "2 annotations (several annotators)"]),
    ("no_labels.json", ["task id 102", "result 0 has no labels"]),
    ("no_task_id.json", ["task at index 2", "overlap"]),
    ("utf16_offsets.json", ["task id 102", "code points"]),
])
def test_malformed_exports_are_one_line_errors_naming_file_and_task(name, needles):
    with pytest.raises(DataError) as info:
        load_documents(FIXTURES / name, need_entities=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(FIXTURES / name) + ": "), message
    for needle in needles:
        assert needle in message, (needle, message)


def test_other_malformed_shapes(tmp_path):
    cases = {
        "not_tasks.json": ([1, 2], "task at index 0: not a Label Studio task"),
        "no_text.json": ([{"id": 5, "data": {"html": "<p>x</p>"}, "annotations": []}], "task id 5: 'data.text'"),
        "relation.json": ([{"id": 6, "data": {"text": "Ann"}, "annotations": [{"result": [
            {"type": "relation", "from_id": "a", "to_id": "b"}]}]}], "task id 6: result 0 has type 'relation'"),
        "two_labels.json": ([{"id": 7, "data": {"text": "Ann"}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 0, "end": 3, "labels": ["a", "b"]}}]}]}], "exactly one label"),
        "bad_json.json": ("[{\"id\": 1,", "invalid JSON"),
        "empty.json": ([], "no tasks found"),
    }
    for name, (content, needle) in cases.items():
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(UserError, match=None) as info:
            load_documents(path)
        assert needle in str(info.value) and str(path) in str(info.value), (name, str(info.value))


def test_gold_needs_an_annotation_on_every_task(tmp_path):
    tasks = json.loads(EXPORT.read_text())
    tasks[2]["annotations"] = []
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(DataError, match="task id 103: no annotation"):
        load_documents(path, need_entities=True)
    assert load_documents(path)[2]["entities"] == []  # as predictions: fine


def test_predictions_file_reads_predictions_only_when_nothing_is_annotated(tmp_path):
    docs = [{"id": "a", "text": "Ann met Bob.", "entities": [{"start": 0, "end": 3, "label": "person", "text": "Ann"}]}]
    path = tmp_path / "pred.json"
    path.write_text(json.dumps([to_task(d, "legal/abc") for d in docs]))
    assert ents(load_documents(path, need_entities=True)[0]) == [(0, 3, "person", "Ann")]


def test_eval_reads_label_studio_gold(tmp_path):
    from click.testing import CliRunner

    from samedge.cli import main

    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(d) + "\n" for d in load_documents(EXPORT)))
    result = CliRunner().invoke(main, ["eval", "--gold", str(EXPORT), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["micro"]["f1"] == pytest.approx(1.0)
    bad = CliRunner().invoke(main, ["eval", "--gold", str(FIXTURES / "two_annotators.json"), "--pred", str(pred)])
    assert bad.exit_code == 2 and "task id 101" in bad.output


# --- writing ---------------------------------------------------------------------------

LABELS = [make_label("person"), make_label("location")]


def gold_extractor():
    return Extractor(GoldEngine({"Ann Lee": "person", "Paris": "location", "Bob": "person"}), LABELS)


def test_writer_streams_a_valid_json_array():
    for n in (0, 1, 3):
        out = io.StringIO()
        w = LabelStudioWriter(out)
        w.start(["person"], {"model_version": "legal/0123456789ab"})
        for i in range(n):
            w.document({"id": str(i), "text": "Ann", "entities": [{"start": 0, "end": 3, "label": "person",
                                                                    "text": "Ann"}]})
        w.end()
        tasks = json.loads(out.getvalue())
        assert len(tasks) == n
        for t in tasks:
            assert t["predictions"][0]["model_version"] == "legal/0123456789ab"
            assert t["predictions"][0]["result"] == [{"from_name": "label", "to_name": "text", "type": "labels",
                                                      "value": {"start": 0, "end": 3, "text": "Ann",
                                                                "labels": ["person"]}}]


def test_run_extract_labelstudio_round_trip_and_atomic(tmp_path):
    texts = {"a.txt": "Ann Lee flew to Paris.", "b.txt": "Nothing.", "c.txt": "Bob 😀 and Ann Lee in Paris."}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "tasks.json"
    paths = [tmp_path / n for n in texts]
    run_extract(paths, fmt="labelstudio", output=out, extractor=gold_extractor(), progress=False)
    jsonl = tmp_path / "docs.jsonl"
    run_extract(paths, fmt="jsonl", output=jsonl, extractor=gold_extractor(), progress=False)
    expected = [json.loads(line) for line in jsonl.read_text().splitlines()]
    back = load_documents(out, need_entities=True)
    assert [(d["id"], d["text"], d["entities"]) for d in back] == [(d["id"], d["text"], d["entities"])
                                                                    for d in expected]
    assert sum(len(d["entities"]) for d in back) == 5

    # A run that fails half-way leaves the previous file untouched (and no temporary file).
    before = out.read_bytes()

    class Boom(Exception):
        pass

    class Failing:
        labels, info, calls = LABELS, {}, 0

        def extract_many(self, texts, ids=None):
            raise Boom()

    with pytest.raises(Boom):
        run_extract(paths, fmt="labelstudio", output=out, extractor=Failing(), progress=False)
    assert out.read_bytes() == before
    assert not list(tmp_path.glob("*.incomplete"))

    # No readable input at all: still a valid (empty) array.
    empty = tmp_path / "none.json"
    run_extract([tmp_path / "missing.txt"], fmt="labelstudio", output=empty, extractor=gold_extractor(),
                progress=False)
    assert json.loads(empty.read_text()) == []


def test_labeling_config_names_what_the_tasks_use():
    config = labeling_config(["person", "court & tribunal"])
    assert '<Labels name="label" toName="text">' in config and '<Text name="text" value="$text"/>' in config
    assert '<Label value="court &amp; tribunal"/>' in config


@pytest.mark.real
def test_real_extract_labelstudio_reads_back_as_identical_gold(real_bundle, cli_env, tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(FOUND_SENTENCES)))
    ls, jl = tmp_path / "tasks.json", tmp_path / "docs.jsonl"
    for fmt, out in (("labelstudio", ls), ("jsonl", jl)):
        proc = run_cli(["extract", inputs, "--bundle", real_bundle, "--threads", "1", "--format", fmt, "-o", out],
                       cli_env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    tasks = json.loads(ls.read_text())
    manifest = (real_bundle / "bundle.json").read_bytes()
    import hashlib
    version = f"legal/{hashlib.sha256(manifest).hexdigest()[:12]}"
    assert {t["predictions"][0]["model_version"] for t in tasks} == {version}
    expected = load_documents(jl)
    gold = load_documents(ls, need_entities=True)
    assert sum(len(d["entities"]) for d in expected) > 0
    assert [(d["id"], d["text"], d["entities"]) for d in gold] == [(d["id"], d["text"], d["entities"])
                                                                   for d in expected]
    # And as gold for `samedge eval`: a perfect score against the JSONL predictions.
    proc = run_cli(["eval", "--gold", ls, "--pred", jl, "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["micro"]["f1"] == pytest.approx(1.0)
    # A malformed export through the CLI: one line, exit 2.
    broken = tmp_path / "broken.json"
    shutil.copy(FIXTURES / "overlap.json", broken)
    assert_one_line_error(run_cli(["eval", "--gold", broken, "--pred", jl], cli_env), "broken.json", "task id 101")
