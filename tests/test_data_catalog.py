"""Every shared domain loads, with the sentence and mention counts that CATALOG.md states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from samedge.data.catalog import DOMAINS, load_split, split_counts
from samedge.data.labels import readable_name

pytestmark = pytest.mark.filterwarnings("ignore:.*empty tokens:UserWarning")


def parse_catalog(path: Path) -> dict:
    """CATALOG.md's table -> {name: {"splits": {split: n}, "labels": {tag: n}}}."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("name", "") or set(cells[0]) <= set("-: "):
            continue
        splits = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", cells[2])}
        labels = {k: int(v) for k, v in re.findall(r"(\S+) (\d+)(?:,|$)", cells[3])}
        assert splits and labels, f"cannot read the CATALOG.md row: {line}"
        rows[cells[0]] = {"splits": splits, "labels": labels}
    return rows


@pytest.fixture(scope="module")
def catalog(shared_data):
    return parse_catalog(shared_data / "CATALOG.md")


def test_catalog_lists_exactly_our_domains(catalog):
    assert set(catalog) == set(DOMAINS)


def _expected_sentences(name: str, catalog_splits: dict) -> dict:
    """CATALOG.md names splits by split or by file (btc: a, b, e, ...): sum them per our split."""
    expected, used = {}, set()
    for split, files in DOMAINS[name].splits.items():
        keys = {split} | {Path(f).stem for f in files}
        hits = [k for k in catalog_splits if k in keys]
        expected[split] = sum(catalog_splits[k] for k in hits)
        used.update(hits)
    assert used == set(catalog_splits), f"{name}: CATALOG.md splits {sorted(set(catalog_splits) - used)} " \
                                        f"match no file of ours"
    return expected


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_counts_match_catalog(name, catalog, shared_data):
    counts = split_counts(name, root=shared_data)
    got_sentences = {split: c["sentences"] for split, c in counts.items()}
    assert got_sentences == _expected_sentences(name, catalog[name]["splits"])
    labels: dict = {}
    for c in counts.values():
        assert c["entities"] == sum(c["labels"].values())
        for label, n in c["labels"].items():
            labels[label] = labels.get(label, 0) + n
    assert labels == catalog[name]["labels"]
    # Labels are listed most frequent first, as in the catalog.
    assert set(DOMAINS[name].raw_labels) == set(labels)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_split_loads_with_exact_offsets(name, shared_data):
    domain = DOMAINS[name]
    seen_ids = set()
    for split in domain.split_names():
        docs = load_split(name, split, root=shared_data)
        assert docs, f"{name}/{split} is empty"
        readable = {readable_name(t) for t in domain.raw_labels}
        for doc in docs:
            assert doc["id"] not in seen_ids, f"{doc['id']} is in two splits"
            seen_ids.add(doc["id"])
            assert "  " not in doc["text"] and doc["text"] == doc["text"].strip()
            for e in doc["entities"]:
                assert doc["text"][e["start"]:e["end"]] == e["text"]
                assert e["label"] in readable
    # A held-out dev split, when there is one, is carved from train: together they are train.
    if "dev" not in domain.splits and "train" in domain.splits:
        upstream = load_split(name, "train", raw=True, root=shared_data)
        dev = load_split(name, "dev", root=shared_data)
        assert 0 < len(dev) <= 500
        assert len(dev) + len(load_split(name, "train", root=shared_data)) == len(upstream)


def test_missing_shared_data_fails_in_ci_and_skips_outside(monkeypatch, tmp_path):
    from tests.conftest import require_shared_data

    monkeypatch.setenv("SAMEDGE_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="shared NER data not found"):
        require_shared_data()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_shared_data()
