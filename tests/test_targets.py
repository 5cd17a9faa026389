"""Target profiles: the shipped ones, user TOML files, errors, and `samedge targets`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from samedge.cli import main
from samedge.data.labels import Label
from samedge.errors import DataError, UserError
from samedge.targets import Target, list_targets, load_target

SHIPPED = {"legal", "biomedical", "finance", "news", "social", "science"}


def test_shipped_profiles():
    targets = {t.name: t for t in list_targets()}
    assert set(targets) == SHIPPED
    for t in targets.values():
        assert isinstance(t, Target) and t.description and t.dev is not None and t.dev.is_file()
        assert len(t.labels) >= 4 and all(isinstance(lab, Label) and lab.description for lab in t.labels)
        assert len({lab.name for lab in t.labels}) == len(t.labels)
        assert len(t.texts) >= 100 and len(set(t.texts)) == len(t.texts)
        assert all(len(text.split()) >= 5 for text in t.texts), t.name


def test_legal_labels():
    names = {lab.name for lab in load_target("legal").labels}
    assert {"person", "organization", "court", "law", "case", "date", "money", "location"} <= names


def test_texts_differ_across_profiles():
    seen = {}
    for t in list_targets():
        for text in t.texts:
            assert text not in seen, f"{t.name} repeats a {seen[text]} text"
            seen[text] = t.name


def test_summary_and_to_dict_are_json():
    t = load_target("finance")
    summary = json.loads(json.dumps(t.summary()))
    assert summary["name"] == "finance" and summary["texts"] == len(t.texts)
    assert summary["labels"] == [lab.tag for lab in t.labels]
    full = json.loads(json.dumps(t.to_dict()))
    assert full["labels"][0] == {"name": t.labels[0].name, "description": t.labels[0].description,
                                 "tag": t.labels[0].tag}
    assert full["texts"] == t.texts and full["dev"] == str(t.dev)


USER_TOML = '''
name = "patents"
description = "patent claims"
texts = ["A method for cooling a battery pack, comprising a plate.", "  "]
texts_file = "more.txt"
dev = "dev.jsonl"

[labels]
organization = "assignees"
"Chemical_Compound" = "compounds named in claims"
'''


def test_user_profile_with_relative_files(tmp_path):
    (tmp_path / "more.txt").write_text("A second sample.\n\nA third sample.\n", encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text('{"text": "x", "entities": []}\n', encoding="utf-8")
    path = tmp_path / "patents.toml"
    path.write_text(USER_TOML, encoding="utf-8")
    t = load_target(str(path))
    assert t.name == "patents"
    assert [lab.name for lab in t.labels] == ["organization", "chemical compound"]
    assert t.labels[1].description == "compounds named in claims"
    assert t.texts == ["A method for cooling a battery pack, comprising a plate.",
                       "A second sample.", "A third sample."]
    assert t.dev == tmp_path / "dev.jsonl"
    assert load_target(path).name == "patents"  # a Path works too


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "my-domain.toml"
    path.write_text('texts = ["one text"]\n[labels]\nperson = "people"\n', encoding="utf-8")
    assert load_target(str(path)).name == "my-domain"


def test_unknown_name():
    with pytest.raises(UserError, match=r"unknown target 'nope'; shipped targets: biomedical, finance"):
        load_target("nope")


@pytest.mark.parametrize("body, line, what", [
    ('name = "x"\ntexts = ["a"\n[labels]\n', 3, "invalid TOML"),
    ('name = \n', 1, "invalid TOML"),
    ('texts = ["a"]\n', None, "needs a [labels] table"),
    ('texts = ["a"]\nlabel = "x"\n[labels]\nperson = "p"\n', None, "unknown keys ['label']"),
    ('texts = "a"\n[labels]\nperson = "p"\n', None, "'texts' must be a list of strings"),
    ('[labels]\nperson = "p"\n', None, "needs sample texts"),
    ('[labels]\nperson = "p"\ntexts = ["a"]\n', None, "put 'texts' above [labels]"),
    ('texts = ["a"]\n[labels]\nperson = ""\n', None, "needs a short description"),
    ('texts = ["a"]\n[labels]\nPER = "p"\nperson = "q"\n', None,
     "labels 'PER' and 'person' would both be 'person' in the prompt"),
    ('name = "a b/c"\ntexts = ["a"]\n[labels]\nperson = "p"\n', None, "'name' must be"),
    ('texts = ["a"]\ndev = "missing.jsonl"\n[labels]\nperson = "p"\n', None, "dev file not found"),
])
def test_malformed_profiles_name_the_file(tmp_path, body, line, what):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_target(str(path))
    message = str(e.value)
    assert "\n" not in message and what in message
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_missing_or_binary_profile(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_target(str(tmp_path / "absent.toml"))
    (tmp_path / "bin.toml").write_bytes(b"\x00\x01")
    with pytest.raises(DataError, match="binary file"):
        load_target(str(tmp_path / "bin.toml"))
    with pytest.raises(UserError, match="is a directory"):
        load_target(str(tmp_path))


# --- the command -------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_targets_list():
    result = invoke("targets", "list")
    assert result.exit_code == 0
    assert {line.split()[0] for line in result.output.splitlines()} == SHIPPED
    items = json.loads(invoke("targets", "list", "--json").output)
    assert {item["name"] for item in items} == SHIPPED


def test_targets_show():
    result = invoke("targets", "show", "legal")
    assert result.exit_code == 0
    assert result.output.startswith("legal: ") and "  court: " in result.output
    shown = json.loads(invoke("targets", "show", "legal", "--json").output)
    assert shown == load_target("legal").to_dict()


def test_targets_show_user_file_and_errors(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('texts = ["one text"]\n[labels]\nperson = "people"\n', encoding="utf-8")
    assert invoke("targets", "show", str(path)).output.startswith("t: ")
    result = invoke("targets", "show", "nope")
    assert result.exit_code == 2 and "unknown target 'nope'" in result.output


def test_build_accepts_a_target_object_and_leaves_it_unchanged(tmp_path):
    from samedge.build import BuildOptions, resolve_target
    from samedge.data.labels import make_label
    from samedge.targets import Target

    mine = Target("mine", "made in code", [make_label("person")], ["Ann spoke."])
    texts = tmp_path / "texts.txt"
    texts.write_text("Bob ran.\nCarl sat.\n")
    got = resolve_target(BuildOptions(target=mine, texts=[str(texts)]))
    assert got.name == "mine" and got.texts == ["Bob ran.", "Carl sat."]
    assert mine.texts == ["Ann spoke."]
