"""The shared NER datasets (``../shared/data/ner``): files, splits and label sets per domain.

Domains without an upstream dev split get one held out from train (a fixed
10%, at most 500 sentences), so that prompts, ranks and merge weights are never
chosen on a test split. ``raw=True`` gives the upstream splits untouched.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import UserError
from .conll import read_conll
from .labels import Label, make_label

HELDOUT_FRACTION = 0.1
HELDOUT_MAX = 500
HELDOUT_SEED = 1234


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    folder: str
    splits: dict  # split -> tuple of file names
    raw_labels: tuple  # raw tags, most frequent first
    scheme: str = "iob2"
    heldout_dev: bool = field(default=False)

    @property
    def labels(self) -> list[Label]:
        return [make_label(t) for t in self.raw_labels]

    def split_names(self) -> list[str]:
        names = list(self.splits)
        if "dev" not in names and "train" in names:
            names.insert(1, "dev")
        return names


def _d(name, description, splits, labels, folder=None, scheme="iob2"):
    return Domain(name, description, folder or name, splits, tuple(labels.split()), scheme)


_CROSSNER = {"train": ("train.txt",), "dev": ("dev.txt",), "test": ("test.txt",)}
_BIO = {"train": ("train.tsv",), "dev": ("devel.tsv",), "test": ("test.tsv",)}

DOMAINS = {d.name: d for d in [
    _d("conll2003", "news: Reuters newswire", _CROSSNER, "location person organisation misc"),
    _d("crossner_ai", "Wikipedia articles on artificial intelligence", _CROSSNER,
       "algorithm product task field misc metrics researcher organisation conference programlang "
       "university country person location"),
    _d("crossner_literature", "Wikipedia articles on literature", _CROSSNER,
       "writer book misc person literarygenre award country poem organisation location magazine event"),
    _d("crossner_music", "Wikipedia articles on music", _CROSSNER,
       "musicalartist band musicgenre album location award song organisation country misc person "
       "event musicalinstrument"),
    _d("crossner_politics", "Wikipedia articles on politics", _CROSSNER,
       "politicalparty politician location organisation election country person misc event"),
    _d("crossner_science", "Wikipedia articles on natural science", _CROSSNER,
       "misc scientist astronomicalobject organisation person chemicalcompound location "
       "academicjournal award protein university enzyme discipline chemicalelement event country theory"),
    _d("mit_movie", "movie search queries, lowercased", {"train": ("trivia10k13train.bio",),
                                                         "test": ("trivia10k13test.bio",)},
       "Plot Actor Genre Year Director Character_Name Opinion Origin Relationship Award Quote Soundtrack"),
    _d("mit_restaurant", "restaurant search queries, lowercased",
       {"train": ("restauranttrain.txt",), "test": ("restauranttest.txt",)},
       "Location Cuisine Amenity Restaurant_Name Dish Rating Hours Price"),
    _d("wnut17", "social media: tweets, Reddit, YouTube comments",
       {"train": ("wnut17train.conll",), "dev": ("emerging.dev.conll",),
        "test": ("emerging.test.annotated",)},
       "person location group creative-work product corporation"),
    _d("bc5cdr", "biomedical: PubMed abstracts on chemicals and diseases", _BIO, "Chemical Disease"),
    _d("ncbi_disease", "biomedical: PubMed abstracts on diseases", _BIO, "Disease"),
    _d("jnlpba", "biomedical: MEDLINE abstracts on molecular biology",
       {"dev": ("devel.tsv",), "test": ("test.tsv",)}, "protein cell_type DNA cell_line RNA"),
    _d("sec_filings", "finance: SEC filings, US loan agreements",
       {"train": ("FIN5.txt",), "test": ("FIN3.txt",)}, "PER ORG LOC MISC", scheme="iob1"),
    _d("gum", "mixed genres: interviews, news, travel guides, how-to guides",
       {"train": ("gum-train.conll",), "test": ("gum-test.conll",)},
       "abstract person place object event organization time substance plant animal quantity"),
    _d("btc", "social media: tweets", {"train": ("a.conll", "b.conll", "e.conll", "g.conll"),
                                       "dev": ("h.conll",), "test": ("f.conll",)}, "PER ORG LOC"),
]}


def data_root() -> Path:
    """``$SAMEDGE_DATA``, else ``../shared/data/ner`` beside the repository."""
    env = os.environ.get("SAMEDGE_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "ner"


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise UserError(f"unknown domain {name!r}; known: {', '.join(sorted(DOMAINS))}") from None


def _read_file(domain: Domain, filename: str, root: Path) -> list[dict]:
    path = root / domain.folder / filename
    if not path.is_file():
        raise UserError(f"dataset file not found: {path} (set SAMEDGE_DATA to the shared/data/ner folder)")
    return read_conll(path, scheme=domain.scheme, id_prefix=f"{domain.name}/{Path(filename).stem}")


@lru_cache(maxsize=64)
def _load_raw(name: str, split: str, root: str) -> tuple:
    domain = get_domain(name)
    if split not in domain.splits:
        raise UserError(f"domain {name!r} has no {split!r} split; it has {', '.join(domain.split_names())}")
    docs = []
    for filename in domain.splits[split]:
        docs.extend(_read_file(domain, filename, Path(root)))
    return tuple(docs)


def _heldout_ids(train_docs) -> set:
    n = min(HELDOUT_MAX, max(1, int(len(train_docs) * HELDOUT_FRACTION)))
    rng = random.Random(HELDOUT_SEED)
    return {d["id"] for d in rng.sample(list(train_docs), n)}


def _copy(doc: dict) -> dict:
    return dict(doc, entities=[dict(e) for e in doc["entities"]])


def _normalise(doc: dict) -> dict:
    ents = [dict(e, label=make_label(e["label"]).name) for e in doc["entities"]]
    return dict(doc, entities=ents)


def load_split(name: str, split: str, raw: bool = False, root: str | Path | None = None) -> list[dict]:
    """Documents of one split with readable label names (``raw=True``: upstream tags and splits)."""
    domain = get_domain(name)
    root = str(Path(root) if root else data_root())
    if raw or split in domain.splits and not (split == "train" and "dev" not in domain.splits):
        docs = list(_load_raw(name, split, root))
    elif split in ("train", "dev") and "train" in domain.splits:
        train = _load_raw(name, "train", root)
        held = _heldout_ids(train)
        docs = [d for d in train if (d["id"] in held) == (split == "dev")]
    else:
        raise UserError(f"domain {name!r} has no {split!r} split; it has {', '.join(domain.split_names())}")
    # Copies: the cached documents are shared, so callers may edit theirs freely.
    return [_copy(d) for d in docs] if raw else [_normalise(d) for d in docs]


def split_counts(name: str, root: str | Path | None = None) -> dict:
    """Upstream counts per file-level split (as CATALOG.md lists them)::

        {split: {"sentences": int, "entities": int, "labels": {raw tag: mentions}}}
    """
    domain = get_domain(name)
    root = str(Path(root) if root else data_root())
    out = {}
    for split in domain.splits:
        docs = _load_raw(name, split, root)
        labels: dict = {}
        for doc in docs:
            for e in doc["entities"]:
                labels[e["label"]] = labels.get(e["label"], 0) + 1
        out[split] = {"sentences": len(docs), "entities": sum(labels.values()), "labels": labels}
    return out


def label_counts(name: str, root: str | Path | None = None) -> dict:
    """Raw tag -> mention count over all upstream splits."""
    counts: dict = {}
    for split in split_counts(name, root).values():
        for label, n in split["labels"].items():
            counts[label] = counts.get(label, 0) + n
    return counts
