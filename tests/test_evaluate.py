"""Entity-level micro P/R/F1: unit cases, the `samedge eval` command, and agreement with seqeval."""

from __future__ import annotations

import json
import random
import re
import warnings

import pytest
from click.testing import CliRunner

from samedge.cli import main
from samedge.data import write_documents, write_jsonl
from samedge.data.catalog import DOMAINS, load_split
from samedge.errors import UserError
from samedge.evaluate import score_documents


def ent(start, end, label, text=""):
    return {"start": start, "end": end, "label": label, "text": text}


def doc(doc_id, text, *entities):
    return {"id": doc_id, "text": text,
            "entities": [dict(e, text=text[e["start"]:e["end"]]) for e in entities]}


TEXT = "Ann met Bob in Rome"
GOLD = [doc("a", TEXT, ent(0, 3, "person"), ent(8, 11, "person"), ent(15, 19, "location")),
        doc("b", "nothing here")]
PRED = [doc("a", TEXT, ent(0, 3, "person"), ent(8, 11, "location"), ent(15, 19, "location")),
        doc("b", "nothing here", ent(0, 7, "person"))]


def test_micro_and_per_label_counts():
    report = score_documents(GOLD, PRED)
    m = report.micro
    assert (m.tp, m.fp, m.fn) == (2, 2, 1)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    per = {k: (v.tp, v.fp, v.fn) for k, v in report.per_label.items()}
    assert per == {"person": (1, 1, 1), "location": (1, 1, 0)}
    assert report.documents == 2


def test_exact_span_only():
    gold = [doc("a", TEXT, ent(0, 3, "person"))]
    for wrong in (ent(0, 2, "person"), ent(0, 7, "person"), ent(0, 3, "location")):
        assert score_documents(gold, [doc("a", TEXT, wrong)]).micro.tp == 0


def test_empty_scores_are_zero_not_nan():
    report = score_documents([doc("a", "x")], [doc("a", "x")])
    assert (report.micro.precision, report.micro.recall, report.micro.f1) == (0.0, 0.0, 0.0)


def test_documents_pair_by_id_in_any_order():
    assert score_documents(GOLD, PRED[::-1]).micro.tp == 2


def test_documents_pair_by_position_when_no_id_is_shared():
    renamed = [dict(d, id=f"pred-{i}") for i, d in enumerate(PRED)]
    assert score_documents(GOLD, renamed).micro.tp == 2


@pytest.mark.parametrize("pred, message", [
    (PRED[:1], "no prediction for 1 gold documents"),
    (PRED + [doc("c", "x")], "not in gold"),
    (PRED + [PRED[0]], "duplicate document id"),
    ([dict(PRED[0], text="Ann met Bob in Oslo"), PRED[1]], "text differs"),
    ([dict(d, id=f"p{i}") for i, d in enumerate(PRED[:1])], "share no document ids"),
])
def test_mismatched_documents_are_user_errors(pred, message):
    with pytest.raises(UserError, match=message):
        score_documents(GOLD, pred)


# --- the command -------------------------------------------------------------------

def run_eval(*args):
    result = CliRunner().invoke(main, ["eval", *map(str, args)])
    return result


def test_eval_command_table_and_json(tmp_path):
    write_jsonl(tmp_path / "gold.jsonl", GOLD)
    write_jsonl(tmp_path / "pred.jsonl", PRED)
    table = run_eval("--gold", tmp_path / "gold.jsonl", "--pred", tmp_path / "pred.jsonl")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["label", "precision", "recall", "f1", "support"]
    assert any(line.split()[:2] == ["location", "50.00"] for line in lines)
    assert lines[-1].split() == ["micro", "50.00", "66.67", "57.14", "3"]

    as_json = run_eval("--gold", tmp_path / "gold.jsonl", "--pred", tmp_path / "pred.jsonl", "--json")
    figures = json.loads(as_json.output)
    assert figures["micro"]["f1"] == pytest.approx(4 / 7)
    assert figures["per_label"]["person"]["support"] == 2
    assert figures["documents"] == 2


def test_eval_command_bad_input_is_one_line(tmp_path):
    (tmp_path / "gold.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    write_jsonl(tmp_path / "pred.jsonl", PRED)
    result = run_eval("--gold", tmp_path / "gold.jsonl", "--pred", tmp_path / "pred.jsonl")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "gold.jsonl:1:" in result.output and "Traceback" not in result.output


# --- agreement with seqeval on every shared test split ------------------------------

TOKEN = re.compile(r"\S+")


def token_spans(text):
    return [(m.start(), m.end()) for m in TOKEN.finditer(text)]


def perturb(docs, labels, rng, rate):
    """Drop, shift, resize and relabel gold entities at token level; add some spurious ones."""
    out = []
    for d in docs:
        toks = token_spans(d["text"])
        entities = []
        for e in d["entities"]:
            # The tokens the entity touches (snips, tasteset: "Paris?" holds the city "Paris").
            touched = [i for i, (s, end) in enumerate(toks) if s < e["end"] and e["start"] < end]
            first, last, label = touched[0], touched[-1], e["label"]
            roll = rng.random()
            if roll < rate:
                continue  # drop
            if roll < 2 * rate:
                step = rng.choice((-1, 1))  # shift
                first, last = first + step, last + step
            elif roll < 3 * rate:
                if rng.random() < 0.5:  # resize one boundary
                    first += rng.choice((-1, 1))
                else:
                    last += rng.choice((-1, 1))
            elif roll < 4 * rate:
                label = rng.choice(labels)  # relabel (sometimes to the same label)
            first, last = max(0, first), min(len(toks) - 1, last)
            if first <= last:
                entities.append(ent(toks[first][0], toks[last][1], label))
        if toks and rng.random() < rate:
            i = rng.randrange(len(toks))
            entities.append(ent(toks[i][0], toks[i][1], rng.choice(labels)))
        out.append(dict(d, entities=entities))
    return out


def read_tags(path):
    """IOB2 tag sequences of a CoNLL file, read without samedge's reader."""
    sentences = [[]]
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            sentences[-1].append(line.rsplit("\t", 1)[1])
        elif sentences[-1]:
            sentences.append([])
    return [s for s in sentences if s]


def seqeval_figures(gold_path, pred_path):
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    y_true, y_pred = read_tags(gold_path), read_tags(pred_path)
    assert len(y_true) == len(y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels with no gold or no predicted entities
        report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True,
                                        zero_division=0)
    return report


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_eval_agrees_with_seqeval(name, shared_data, tmp_path):
    pytest.importorskip("seqeval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gold = load_split(name, "test", raw=True, root=shared_data)
    # Empty texts have no tokens, so no CoNLL lines: leave them out on both sides.
    gold = [d for d in gold if d["text"]]
    labels = list(DOMAINS[name].raw_labels)
    gold_path = tmp_path / "gold.conll"
    write_documents(gold_path, gold, "conll")
    # About half of the entities survive the perturbation unchanged (rate 0.12 per kind).
    variants = {"identical": gold,
                "perturbed": perturb(gold, labels, random.Random(f"{name}-1"), rate=0.12)}
    for variant, pred in variants.items():
        pred_path = tmp_path / f"pred-{variant}.conll"
        write_documents(pred_path, pred, "conll")
        result = run_eval("--gold", gold_path, "--pred", pred_path, "--json")
        assert result.exit_code == 0, result.output
        ours = json.loads(result.output)
        theirs = seqeval_figures(gold_path, pred_path)
        where = f"{name}/{variant}"
        for ours_key, theirs_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert abs(ours["micro"][ours_key] - theirs["micro avg"][theirs_key]) <= 1e-9, where
        for label, s in ours["per_label"].items():
            assert abs(s["f1"] - theirs[label]["f1-score"]) <= 1e-9, f"{where}/{label}"
            assert s["support"] == theirs[label]["support"], f"{where}/{label}"
        if variant == "identical":
            assert ours["micro"]["f1"] == 1.0
        else:
            assert ours["micro"]["f1"] < 1.0
