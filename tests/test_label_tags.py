"""The user's label names (tags) everywhere: the prompt shows samedge's readable names, every output
carries the tags exactly as given (upper case, slashes, underscores, spaces), through parsing, every
writer, bundles (old ones without tags too), dev-set scoring, and build -> extract -> eval (``real``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from samedge.extract.api import format_table, run_extract
from samedge.bundle import labels_of, manifest
from samedge.data.labels import Label, make_label, parse_label_spec, tag_mapper, user_label
from samedge.data.writers import format_documents
from samedge.errors import UserError
from samedge.extract import Extractor
from samedge.extract.prompts import parse_answer, split_prompt
from tests.bundle_fixtures import REPO, ScriptedEngine, assert_one_line_error, check_spans, cli_env, run_cli  # noqa: F401

SPEC = "PER=names of people,LEGISLATION/ACT=statutes and acts,COURT,ORG,Restaurant_Name,court case"
TAGS = ["PER", "LEGISLATION/ACT", "COURT", "ORG", "Restaurant_Name", "court case"]
TEXT = "Judge Ann Lee of the High Court applied the Fraud Act 2006 to Acme Ltd in Smith v Jones at Luigi's."
# What a model answers: the prompt's readable names, loosely spelled.
ANSWER = ("person: Ann Lee\nCourt: High Court\nlegislation/act: Fraud Act 2006\n- Organization: Acme Ltd\n"
          "Court Case: Smith v Jones\nrestaurant_name: Luigi's")
EXPECTED = [("Ann Lee", "PER"), ("High Court", "COURT"), ("Fraud Act 2006", "LEGISLATION/ACT"), ("Acme Ltd", "ORG"),
            ("Smith v Jones", "court case"), ("Luigi's", "Restaurant_Name")]


def pairs(doc):
    return [(e["text"], e["label"]) for e in doc["entities"]]


def test_label_spec_keeps_the_users_names_and_descriptions():
    labels = parse_label_spec(SPEC)
    assert [lab.tag for lab in labels] == TAGS
    assert [lab.name for lab in labels] == ["person", "legislation/act", "court", "organization", "restaurant name",
                                            "court case"]
    assert labels[0].description == "names of people"  # the user's description wins
    assert labels[3].description == "companies, agencies, institutions, teams"  # else samedge's stands in
    assert Label("person", "people").tag == "person"  # the tag defaults to the prompt name
    assert make_label("PER").tag == "person"  # samedge's own data (catalog, training) speaks readable names


def test_the_prompt_shows_readable_names_never_tags():
    prefix, _ = split_prompt(parse_label_spec(SPEC))
    assert "person: names of people\n" in prefix and "organization: companies" in prefix
    assert "PER" not in prefix and "ORG" not in prefix and "Restaurant_Name" not in prefix


@pytest.mark.parametrize("spec, first, second", [
    ("ORG,organisation", "ORG", "organisation"),
    ("PER,person", "PER", "person"),
    ("Restaurant_Name,restaurant name", "Restaurant_Name", "restaurant name"),
    ("per,PER", "per", "PER"),
])
def test_labels_that_one_prompt_name_would_merge_are_refused(spec, first, second):
    with pytest.raises(UserError) as e:
        parse_label_spec(spec)
    assert f"labels {first!r} and {second!r} would both be" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError, match="could not tell them apart"):  # the Python API is guarded too
        Extractor(ScriptedEngine(lambda t: ("none", True)), [user_label(first), user_label(second)])


def test_a_tag_listed_twice_is_refused():
    with pytest.raises(UserError, match="'PER' is listed twice"):
        parse_label_spec("PER,ORG,PER")


def test_answers_map_back_to_tags():
    parsed = parse_answer(ANSWER + "\nPER: Bob\nweapon: sword", parse_label_spec(SPEC))
    assert [label for label, _ in parsed.pairs] == [t for _, t in EXPECTED] + ["PER"]  # a tag is read too
    assert parsed.unknown_labels == {"weapon": 1}


def test_every_output_format_carries_the_tags():
    doc = Extractor(ScriptedEngine(lambda t: (ANSWER, True)), parse_label_spec(SPEC)).extract(TEXT, "d")
    check_spans(doc, set(TAGS))
    assert pairs(doc) == sorted(EXPECTED, key=lambda p: TEXT.index(p[0]))
    jsonl = json.loads(format_documents([doc], "jsonl"))
    assert [e["label"] for e in jsonl["entities"]] == [e["label"] for e in doc["entities"]]
    spacy = json.loads(format_documents([doc], "spacy"))
    assert {e["label"] for e in spacy["ents"]} == set(TAGS)
    conll = format_documents([doc], "conll")
    for tag in ("B-PER", "I-PER", "B-COURT", "B-LEGISLATION/ACT", "B-ORG", "B-Restaurant_Name", "B-court_case"):
        assert f"\t{tag}\n" in conll, tag  # CoNLL columns are whitespace-separated: a space becomes "_"
    table = format_table(doc)
    assert " LEGISLATION/ACT " in table and " PER " in table and "person" not in table


def test_bundle_manifest_keeps_tag_and_prompt_name_and_old_bundles_load():
    labels = parse_label_spec(SPEC)
    data = json.loads(json.dumps(manifest(target={"name": "t"}, labels=labels, base={}, selection={}, merge={},
                                          quant="q8_0", files={})))
    assert data["labels"][0] == {"name": "person", "description": "names of people", "tag": "PER"}
    assert labels_of(data) == labels
    old = [{"name": "person", "description": "names of people"}]  # written before tags existed
    assert labels_of({"labels": old}) == [Label("person", "names of people", "person")]


def test_tag_mapper_reads_gold_in_either_spelling():
    to_tag = tag_mapper(parse_label_spec("PER,court,LEGISLATION/ACT"))
    assert [to_tag(x) for x in ("PER", "person", "per", "court", "COURT", "LEGISLATION/ACT", "weapon")] == \
        ["PER", "PER", "PER", "court", "court", "LEGISLATION/ACT", "weapon"]


@pytest.mark.parametrize("target_spec, gold_label", [("PER", "PER"), ("person", "PER"), ("PER", "person")])
def test_dev_scoring_compares_tags_with_tags(monkeypatch, tmp_path, target_spec, gold_label):
    """Selection by performance on a dev set: predictions carry tags, gold carries the user's names;
    a perfect expert scores 1 however the two spell the same label, a silent one 0."""
    from samedge.select import performance, runner
    from samedge.targets import Target

    class FakeEngine:
        def __init__(self, *a, **k):
            pass

        def count_tokens(self, text):
            return len(text.split())

        def set_adapter(self, path, scale=1.0):
            self.adapter = path

        def complete(self, prefix, texts, suffix, max_tokens):
            return [("person: Ann" if self.adapter == "good" else "none", True) for _ in texts]

        def close(self):
            pass

    monkeypatch.setattr("samedge.extract.engines.llama.LlamaEngine", FakeEngine)
    monkeypatch.setattr(runner, "scoring_base", lambda base: tmp_path / "base.gguf")
    monkeypatch.setattr(runner, "lora_gguf", lambda expert, base_gguf: expert.name)
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"id": "1", "text": "Ann met Bob.",
                               "entities": [{"start": 0, "end": 3, "label": gold_label}]}) + "\n")
    experts = {n: {"expert": SimpleNamespace(name=n, path=tmp_path / n,
                                             manifest={"files": {"adapter_model.safetensors": n * 8}})}
               for n in ("good", "mute")}
    target = Target("t", "test", parse_label_spec(target_spec), ["x"], dev=dev)
    scores = performance.performance_strategy(experts, target=target, base=SimpleNamespace(gguf=tmp_path / "b"))
    assert scores == {"good": 1.0, "mute": 0.0}


def test_a_tiny_real_bundle_restores_the_tags(tmp_path):
    """A bundle around a tiny random llama (real GGUF, real llama.cpp engine), its bundle.json written
    with user tags: `load_extractor` restores them, and with the engine's answers scripted (a random
    model's answers never parse), `run_extract` writes them in JSONL, CoNLL and spaCy form."""
    pytest.importorskip("torch")
    from samedge.converters.hf_to_gguf import convert
    from samedge.bundle import MANIFEST, MODEL, load_extractor
    from samedge.files import hash_files
    from tests.tiny_models import make_tiny_llama

    model, tokenizer = make_tiny_llama(None, hidden=32, layers=2, seed=0)
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    tokenizer.save_pretrained(tmp_path / "hf")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    convert(tmp_path / "hf", bundle / MODEL, out_type="f16")
    data = manifest(target={"name": "tiny"}, labels=parse_label_spec(SPEC), base={"name": "tiny", "base_id": "0" * 64},
                    selection={}, merge={}, quant="f16", files=hash_files(bundle, [MODEL]))
    (bundle / MANIFEST).write_text(json.dumps(data, indent=2))

    extractor = load_extractor(bundle, threads=1, n_seq=2)
    assert [lab.tag for lab in extractor.labels] == TAGS
    extractor.engine.complete = lambda prefix, chunks, suffix, max_tokens: [(ANSWER, True) for _ in chunks]
    (tmp_path / "case.txt").write_text(TEXT)
    out = {}
    for fmt in ("jsonl", "conll", "spacy"):
        run_extract([tmp_path / "case.txt"], extractor=extractor, fmt=fmt, output=tmp_path / fmt, progress=False)
        out[fmt] = (tmp_path / fmt).read_text()
    extractor.engine.close()
    assert pairs(json.loads(out["jsonl"])) == sorted(EXPECTED, key=lambda p: TEXT.index(p[0]))
    assert {e["label"] for e in json.loads(out["spacy"])["ents"]} == set(TAGS)
    assert "\tB-LEGISLATION/ACT\n" in out["conll"] and "\tI-PER\n" in out["conll"]


# --- named custom targets -------------------------------------------------------------

def test_a_new_target_name_with_labels_and_texts_is_a_custom_target(tmp_path):
    from samedge.build import BuildOptions, resolve_target

    texts = tmp_path / "t.txt"
    texts.write_text("The lessee shall pay rent.\n")
    target = resolve_target(BuildOptions(target="contracts", labels=parse_label_spec("PER,ORG"), texts=[str(texts)]))
    assert target.name == "contracts" and [lab.tag for lab in target.labels] == ["PER", "ORG"]
    assert target.texts == ["The lessee shall pay rent."]
    shipped = resolve_target(BuildOptions(target="legal", labels=parse_label_spec("PER"), texts=[str(texts)]))
    assert shipped.name == "legal" and shipped.texts == ["The lessee shall pay rent."]  # a profile stays a profile
    for opts in (BuildOptions(target="contracts"), BuildOptions(target="contracts", labels=parse_label_spec("PER")),
                 BuildOptions(target="contracts", texts=[str(texts)])):
        with pytest.raises(UserError) as e:
            resolve_target(opts)
        assert "unknown target 'contracts'" in str(e.value) and "give both --labels and --texts" in str(e.value)


def test_a_new_target_name_without_labels_is_one_line_through_the_cli(tmp_path, cli_env):
    proc = run_cli(["build", "--target", "contracts", "--labels", "PER"], cli_env, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == ["[target]", proc.stderr.splitlines()[-1]]  # the stage, then one error line
    assert proc.stderr.splitlines()[-1].startswith("error: unknown target 'contracts'") and "--labels and --texts" in proc.stderr
    proc = run_cli(["build", "--labels", "ORG,organisation", "--texts", REPO / "README.md"], cli_env, cwd=tmp_path)
    assert_one_line_error(proc, "labels 'ORG' and 'organisation' would both be 'organization'")
    assert not (tmp_path / "bundles").exists()


# --- end to end: build -> extract -> eval ------------------------------------------------

@pytest.mark.real
def test_user_tags_survive_build_extract_and_eval(tmp_path, cli_env):
    """`samedge build --target contracts --labels ... --texts ...` (the real base and shipped experts,
    k=1), the bundle loaded as `samedge extract` loads it with the model's answers scripted at the
    engine (the real model's tokenizer still counts tokens), then `samedge eval` against a gold written
    with the same tags: every tag comes back unchanged and scores 100."""
    from samedge.bundle import load_extractor, read_bundle
    from samedge.library import Library

    if not Library.open().names():
        pytest.skip("no shipped experts yet")
    texts = tmp_path / "t.txt"
    texts.write_text("The High Court applied the Fraud Act 2006.\nAcme Ltd appealed to the Court of Appeal.\n")
    proc = run_cli(["build", "--target", "contracts", "--labels", SPEC, "--texts", texts, "--k", "1",
                    "--method", "linear", "--threads", "1"], cli_env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = tmp_path / "bundles" / "contracts"  # the default bundle directory is named after the target
    data = read_bundle(bundle)
    assert data["target"]["name"] == "contracts"
    assert [(d["tag"], d["name"]) for d in data["labels"]] == list(zip(TAGS, [lab.name for lab in parse_label_spec(SPEC)]))

    extractor = load_extractor(bundle, threads=1, n_seq=2)
    prompts = []

    def complete(prefix, chunks, suffix, max_tokens):
        prompts.append(prefix)
        return [(ANSWER, True) for _ in chunks]

    extractor.engine.complete = complete  # the tiny k=1 merge is no NER model: script its answers
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "case.txt").write_text(TEXT)
    pred = tmp_path / "pred.jsonl"
    run_extract([tmp_path / "docs"], extractor=extractor, output=pred, progress=False)
    extractor.engine.close()
    assert "legislation/act: statutes and acts" in prompts[0] and "PER" not in prompts[0]
    doc = json.loads(pred.read_text())
    assert pairs(doc) == sorted(EXPECTED, key=lambda p: TEXT.index(p[0]))

    gold = tmp_path / "gold.jsonl"
    entities = [{"start": TEXT.index(m), "end": TEXT.index(m) + len(m), "label": t} for m, t in EXPECTED]
    gold.write_text(json.dumps({"id": doc["id"], "text": TEXT, "entities": entities}) + "\n")
    proc = run_cli(["eval", "--gold", gold, "--pred", pred, "--json"], cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["micro"]["f1"] == 1.0 and set(report["per_label"]) == set(TAGS)
