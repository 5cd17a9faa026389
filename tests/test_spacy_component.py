"""The ``samedge`` spaCy component in real spaCy pipelines (``spacy.blank("en")``): doc.ents are
the Extractor's entities, misaligned offsets are counted, nlp.pipe feeds extract_many batches,
the overlap rule after an entity_ruler, and the config round trip through to_disk/spacy.load."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

spacy = pytest.importorskip("spacy", reason="spaCy is not installed (pip install 'samedge[spacy]')")

from spacy.tokenizer import Tokenizer  # noqa: E402

from samedge.data.labels import make_label  # noqa: E402
from samedge.extract import Extractor  # noqa: E402
from samedge.integrations import spacy_component  # noqa: E402
from samedge.integrations.spacy_component import SamedgeComponent, make_samedge  # noqa: E402
from tests.bundle_fixtures import (FOUND_SENTENCES, REPO, ScriptedEngine, cli_env, real_bundle,  # noqa: E402,F401
                                   real_extractor)

LABELS = [make_label("person"), make_label("location")]


def ents(doc):
    return [(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents]


def spans(result):
    return [(e["start"], e["end"], e["label"], e["text"]) for e in result["entities"]]


@pytest.fixture
def scripted(monkeypatch):
    """``Extractor.load`` returns an Extractor over a scripted engine (answers set per test), so the
    real factory and config run without a model."""
    answers = {"text": "none"}
    made = []

    def load(bundle=None, **kw):
        made.append((bundle, kw))
        return Extractor(ScriptedEngine(lambda t: (answers["text"], True)), kw.get("labels") or LABELS)

    monkeypatch.setattr(Extractor, "load", staticmethod(load))
    return answers, made


def test_factory_is_spacys_and_the_entry_point_names_it():
    meta = spacy.language.Language.get_factory_meta("samedge")
    assert spacy.registry.factories.get(meta.factory) is make_samedge
    assert "doc.ents" in meta.assigns
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["spacy_factories"]
    module, attr = entry["samedge"].split(":")
    assert getattr(sys.modules[module], attr) is make_samedge
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spacy"]


def test_installed_entry_point_lets_spacy_find_the_factory_without_an_import(tmp_path):
    from importlib.metadata import entry_points

    if not [ep for ep in entry_points(group="spacy_factories") if ep.name == "samedge"]:
        pytest.skip("samedge's spacy_factories entry point is not installed here (pip install -e '.[spacy]')")
    code = ("import spacy, sys\n"
            "nlp = spacy.blank('en')\n"
            "try:\n"
            "    nlp.add_pipe('samedge', config={'bundle': sys.argv[1]})\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "no-bundle")], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    # spaCy found and ran samedge's factory (which then refused the missing bundle): no E002.
    assert out.stdout.startswith("UserError bundle ") and "does not exist" in out.stdout, out.stdout


def test_the_core_never_imports_spacy():
    code = ("import sys, samedge, samedge.extract.api, samedge.extract, samedge.data.loading, samedge.data.writers, "
            "samedge.data.html, samedge.data.labelstudio, samedge.cli, samedge.integrations; "
            "print('spacy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_mid_token_span_is_counted_not_dropped_silently(scripted):
    answers, _ = scripted
    answers["text"] = "person: Ann\nperson: Bob"  # "Ann" is found inside "Annabel" (no whole word)
    text = "Annabel met Bob."
    nlp = spacy.blank("en")
    nlp.add_pipe("samedge", config={"bundle": "unused"})
    doc = nlp(text)
    assert ents(doc) == [(12, 15, "person", "Bob")]
    info = doc.user_data["samedge"]
    assert info["misaligned"] == 1 and info["alignment_mode"] == "strict"
    assert info["misaligned_entities"] == [{"start": 0, "end": 3, "label": "person", "text": "Ann"}]
    assert [(e["start"], e["end"]) for e in info["entities"]] == [(0, 3), (12, 15)]
    assert set(info["counts"]) >= {"parse_failures", "split_retries"}

    expand = spacy.blank("en")
    expand.add_pipe("samedge", config={"bundle": "unused", "alignment_mode": "expand"})
    doc = expand(text)
    assert ents(doc) == [(0, 7, "person", "Annabel"), (12, 15, "person", "Bob")]
    assert doc.user_data["samedge"]["misaligned"] == 1  # kept, widened, and still counted

    with pytest.raises(ValueError, match="alignment_mode 'fuzzy'"):
        spacy.blank("en").add_pipe("samedge", config={"bundle": "unused", "alignment_mode": "fuzzy"})


def test_after_an_entity_ruler_overlap_rule(scripted):
    answers, _ = scripted
    answers["text"] = "person: Ann Lee\nperson: Bob\nlocation: Paris"
    text = "Ann Lee met Bob in Paris."

    def pipeline(**config):
        nlp = spacy.blank("en")
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "PERSON", "pattern": "Ann"}, {"label": "GPE", "pattern": "Paris"}])
        nlp.add_pipe("samedge", config={"bundle": "unused", **config})
        return nlp

    doc = pipeline()(text)  # default: the ruler's entities stay, samedge adds what overlaps none
    assert ents(doc) == [(0, 3, "PERSON", "Ann"), (12, 15, "person", "Bob"), (19, 24, "GPE", "Paris")]
    assert doc.user_data["samedge"]["overlapping"] == 2 and doc.user_data["samedge"]["replaced"] == 0
    assert [t.ent_iob_ for t in doc] == ["B", "O", "O", "B", "O", "B", "O"]

    doc = pipeline(overwrite_ents=True)(text)  # samedge wins; ruler entities overlapping none stay
    assert ents(doc) == [(0, 7, "person", "Ann Lee"), (12, 15, "person", "Bob"), (19, 24, "location", "Paris")]
    assert doc.user_data["samedge"]["replaced"] == 2 and doc.user_data["samedge"]["overlapping"] == 0

    answers["text"] = "person: Bob"
    doc = pipeline(overwrite_ents=True)(text)
    assert ents(doc) == [(0, 3, "PERSON", "Ann"), (12, 15, "person", "Bob"), (19, 24, "GPE", "Paris")]


def test_pipe_feeds_extract_many_batches(scripted):
    answers, _ = scripted
    answers["text"] = "person: Bob"
    nlp = spacy.blank("en")
    component = nlp.add_pipe("samedge", config={"bundle": "unused"})
    sizes = []
    original = component.extractor.extract_many
    component.extractor.extract_many = lambda texts, ids=None: sizes.append(len(texts)) or original(texts, ids)
    docs = list(nlp.pipe([f"Bob number {i}." for i in range(7)], batch_size=3))
    assert sizes == [3, 3, 1]
    assert [ents(d) for d in docs] == [[(0, 3, "person", "Bob")]] * 7


def test_config_reaches_the_extractor(scripted):
    _, made = scripted
    nlp = spacy.blank("en")
    nlp.add_pipe("samedge", config={"bundle": "bundles/x", "threads": 1, "n_seq": 2, "labels": "person,court=courts"})
    bundle, kw = made[-1]
    assert bundle == "bundles/x" and kw["threads"] == 1 and kw["n_seq"] == 2
    assert [lab.name for lab in kw["labels"]] == ["person", "court"]
    assert nlp.get_pipe("samedge").labels == ("person", "court")


# --- with a real bundle ---------------------------------------------------------------------

@pytest.mark.real
def test_real_doc_ents_equal_the_extractor_and_round_trip(real_bundle, real_extractor, tmp_path):
    expected = real_extractor.extract_many(FOUND_SENTENCES)
    assert sum(len(r["entities"]) for r in expected) > 0
    nlp = spacy.blank("en")
    nlp.add_pipe("samedge", config={"bundle": str(real_bundle), "threads": 1, "n_seq": 4})
    docs = list(nlp.pipe(FOUND_SENTENCES, batch_size=4))
    for doc, result in zip(docs, expected):
        aligned = [s for s in spans(result) if doc.char_span(s[0], s[1]) is not None]
        assert ents(doc) == aligned
        assert doc.user_data["samedge"]["misaligned"] == len(spans(result)) - len(aligned)
        assert doc.user_data["samedge"]["entities"] == result["entities"]
    assert [ents(nlp(t)) for t in FOUND_SENTENCES] == [ents(d) for d in docs]  # __call__ == pipe

    # to_disk / spacy.load: the config names the bundle, nothing heavy is written.
    nlp.to_disk(tmp_path / "pipeline")
    written = sum(p.stat().st_size for p in (tmp_path / "pipeline").rglob("*") if p.is_file())
    assert written < 1_000_000
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["samedge"]
    assert loaded.config["components"]["samedge"]["bundle"] == str(real_bundle)
    assert loaded.config["components"]["samedge"]["alignment_mode"] == "strict"
    assert [ents(d) for d in loaded.pipe(FOUND_SENTENCES, batch_size=8)] == [ents(d) for d in docs]


@pytest.mark.real
def test_real_whitespace_tokens_leave_punctuated_entities_misaligned(real_bundle, real_extractor):
    """With a whitespace-only tokenizer, entities glued to punctuation ("AL-AIN,") fall mid-token."""
    expected = real_extractor.extract_many(FOUND_SENTENCES)
    nlp = spacy.blank("en")
    nlp.tokenizer = Tokenizer(nlp.vocab)  # splits on whitespace only
    component = SamedgeComponent(nlp, extractor=real_extractor)
    total = 0
    for text, result in zip(FOUND_SENTENCES, expected):
        doc = component(nlp.make_doc(text))
        starts, ends = {t.idx for t in doc}, {t.idx + len(t.text) for t in doc}
        misaligned = [s for s in spans(result) if s[0] not in starts or s[1] not in ends]
        assert doc.user_data["samedge"]["misaligned"] == len(misaligned)
        assert ents(doc) == [s for s in spans(result) if s not in misaligned]
        total += len(misaligned)
    assert total > 0


def test_module_docstring_documents_the_choices():
    doc = spacy_component.__doc__
    for word in ("alignment_mode", '"strict"', "overwrite_ents", "misaligned", "to_disk"):
        assert word in doc
