"""Every shared domain loads, with the sentence and mention counts that CATALOG.md,
CATALOG-ADDED.md and each SOURCE.md state."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from samedge.data.catalog import DOMAINS, group_of, load_split, split_counts
from samedge.data.hipe import read_hipe
from samedge.data.labels import readable_name
from samedge.data.litbank import read_litbank
from samedge.data.tasteset import count_annotations

CATALOGS = ("CATALOG.md", "CATALOG-ADDED.md")

pytestmark = [pytest.mark.filterwarnings("ignore:.*empty tokens:UserWarning"),
              pytest.mark.filterwarnings("ignore:.*I- tags start a mention:UserWarning")]


def parse_labels(cell: str) -> dict:
    """``"PER 9383, FAC 2154"`` -> {tag: n}; per sub-corpus (``"ajmc: scope 998, ...; hipe2020:
    pers 606"``) -> {"ajmc/scope": n, ...}. Notes in brackets are skipped."""
    pattern = r"(\S+) (\d+)(?=,|;|$| \()"
    if not re.match(r"^\w+: ", cell):
        return {k: int(v) for k, v in re.findall(pattern, cell)}
    labels = {}
    for part in cell.split(";"):
        sub, _, rest = part.strip().partition(": ")
        labels.update({f"{sub}/{k}": int(v) for k, v in re.findall(pattern, rest)})
    return labels


def parse_catalog(path: Path) -> dict:
    """A catalog's table -> {name: {"splits": {split: n}, "labels": {tag: n}}}."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("name", "") or set(cells[0]) <= set("-: "):
            continue
        splits = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", cells[2])}
        labels = parse_labels(cells[3])
        assert splits and labels, f"cannot read the {path.name} row: {line}"
        rows[cells[0]] = {"splits": splits, "labels": labels}
    return rows


@pytest.fixture(scope="module")
def catalog(shared_data):
    rows: dict = {}
    for name in CATALOGS:
        more = parse_catalog(shared_data / name)
        assert not set(more) & set(rows), f"{name} repeats a domain"
        rows.update(more)
    return rows


def _count(docs) -> dict:
    labels: dict = {}
    for doc in docs:
        for e in doc["entities"]:
            labels[e["label"]] = labels.get(e["label"], 0) + 1
    return {"sentences": len(docs), "entities": sum(labels.values()), "labels": labels}


@functools.lru_cache(maxsize=None)  # each domain is read once for all the tests below
def upstream_counts(name: str, root: Path) -> dict:
    """Counts per upstream split as upstream counts them: ``split_counts`` except where a
    reader policy changes them (litbank's outermost layer, hipe's whole mentions and lower-
    cased types, tasteset's lines and pieces); those are read back in upstream's terms."""
    domain = DOMAINS[name]
    folder = root / domain.folder
    if name == "litbank":
        docs = [d for p in sorted(folder.glob("entities/tsv/*.tsv")) for d in read_litbank(p, layers="all")]
        return {"all": _count(docs)}
    if name == "hipe2022_en":
        return {split: _count(read_hipe(folder / files[0], whole_mentions=False))
                for split, files in domain.upstream.items()}
    if name == "tasteset":
        c = count_annotations(folder / "TASTEset.csv")
        return {"all": {"sentences": c["recipes"], "entities": c["mentions"], "labels": c["labels"]}}
    return split_counts(name, root=root)


def _split_keys(split: str, files) -> set:
    """Names a catalog or SOURCE.md may use for one of our upstream splits: the split, a
    file's stem (btc: a, b, ...; finer_ord: val) or a file's folder (wlp2020: train_data)."""
    return {split} | {Path(f).stem for f in files} | {Path(f).parts[0] for f in files}


def test_catalog_lists_exactly_our_domains(catalog):
    assert set(catalog) == set(DOMAINS)


def _expected_sentences(name: str, catalog_splits: dict) -> dict:
    """Catalogs name splits by split or by file (btc: a, b, e, ...): sum them per upstream split."""
    expected, used = {}, set()
    for split, files in DOMAINS[name].upstream_splits.items():
        keys = _split_keys(split, files)
        hits = [k for k in catalog_splits if k in keys]
        expected[split] = sum(catalog_splits[k] for k in hits)
        used.update(hits)
    assert used == set(catalog_splits), f"{name}: CATALOG.md splits {sorted(set(catalog_splits) - used)} " \
                                        f"match no file of ours"
    return expected


@pytest.mark.real
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_counts_match_catalog(name, catalog, shared_data):
    counts = upstream_counts(name, shared_data)
    got_sentences = {split: c["sentences"] for split, c in counts.items()}
    assert got_sentences == _expected_sentences(name, catalog[name]["splits"])
    labels: dict = {}
    for split, c in counts.items():
        assert c["entities"] == sum(c["labels"].values())
        for label, n in c["labels"].items():
            key = f"{split.split('_')[0]}/{label}" if name == "hipe2022_en" else label
            labels[key] = labels.get(key, 0) + n
    expected = catalog[name]["labels"]
    if name == "snips2017":  # the catalog lists the 12 biggest of 39 slots (SOURCE.md has all)
        assert len(labels) == 39 and {k: labels[k] for k in expected} == expected
    else:
        assert labels == expected
    # Labels as samedge reads them (hipe: lower-cased types) are the domain's raw labels,
    # most frequent first.
    ours: dict = {}
    for c in split_counts(name, root=shared_data).values():
        for label, n in c["labels"].items():
            ours[label] = ours.get(label, 0) + n
    assert set(DOMAINS[name].raw_labels) == set(ours)
    if name in ADDED:
        assert list(DOMAINS[name].raw_labels) == sorted(ours, key=lambda k: -ours[k])


# The domains of CATALOG-ADDED.md.
ADDED = ["bc2gm", "craft", "finer_ord", "hipe2022_en", "linnaeus", "litbank", "snips2017", "tasteset", "wlp2020"]


def parse_source_splits(path: Path) -> dict:
    """SOURCE.md's "## Splits" table -> {split: (sentences, mentions)}. Sentences are the
    first column named sentences, queries or recipes; hipe's rows are keyed sub-corpus_split."""
    lines = path.read_text(encoding="utf-8").split("## Splits", 1)[1].strip().splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("|")):]
    table = lines[:next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    header, body = rows[0], [r for r in rows[2:] if r[0]]
    sent = next(i for i, h in enumerate(header) if any(w in h for w in ("sentences", "queries", "recipes")))
    ment = next(i for i, h in enumerate(header) if "mentions" in h)
    out = {}
    for r in body:
        key = f"{r[0]}_{r[1]}" if header[0] == "sub-corpus" else r[0].split()[0]
        out[key] = (int(r[sent]), int(r[ment]))
    return out


@pytest.mark.real
@pytest.mark.parametrize("name", ADDED)
def test_counts_match_source_md(name, shared_data):
    source = parse_source_splits(shared_data / DOMAINS[name].folder / "SOURCE.md")
    counts = upstream_counts(name, shared_data)
    got = {}
    for split, files in DOMAINS[name].upstream_splits.items():
        (key,) = [k for k in source if k in _split_keys(split, files)]
        got[key] = (counts[split]["sentences"], counts[split]["entities"])
    assert got == source


@pytest.mark.real
def test_policies_change_counts_only_as_documented(shared_data):
    up, ours = upstream_counts("litbank", shared_data)["all"], split_counts("litbank", root=shared_data)["all"]
    assert ours["sentences"] == up["sentences"] and ours["entities"] < up["entities"]  # inner layers go
    for split, c in split_counts("hipe2022_en", root=shared_data).items():
        u = upstream_counts("hipe2022_en", shared_data)[split]
        # Each sentence cut not made (a mention ran across it) is one mention fewer.
        assert u["sentences"] - c["sentences"] == u["entities"] - c["entities"] >= 0
    lines = count_annotations(shared_data / "tasteset" / "TASTEset.csv")
    taste = split_counts("tasteset", root=shared_data)["all"]
    assert (taste["sentences"], taste["entities"]) == (lines["lines"], lines["pieces_kept"]) == (5374, 19559)


@pytest.mark.real
@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_split_loads_with_exact_offsets(name, shared_data):
    domain = DOMAINS[name]
    seen_ids = set()
    groups: dict = {}
    for split in domain.split_names():
        docs = load_split(name, split, root=shared_data)
        assert docs, f"{name}/{split} is empty"
        groups[split] = {group_of(d["id"]) for d in docs}
        readable = {readable_name(t, name) for t in domain.raw_labels}
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
    # A split made by book or recipe keeps each one whole, and together they are all of it.
    if domain.grouped:
        assert not (groups["train"] & groups["dev"] or groups["train"] & groups["test"]
                    or groups["dev"] & groups["test"])
        assert len(seen_ids) == split_counts(name, root=shared_data)["all"]["sentences"]


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_no_two_labels_of_a_domain_share_a_readable_name(name):
    names = [label.name for label in DOMAINS[name].labels]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_domain_has_a_licence(name):
    licence = DOMAINS[name].licence
    assert licence and " " not in licence.replace(" AND ", "-"), licence
    assert DOMAINS[name].non_commercial == ("-NC" in licence or "Reuters" in licence)


def test_missing_shared_data_fails_in_ci_and_skips_outside(monkeypatch, tmp_path):
    from tests.conftest import require_shared_data

    monkeypatch.setenv("SAMEDGE_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="shared NER data not found"):
        require_shared_data()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_shared_data()
