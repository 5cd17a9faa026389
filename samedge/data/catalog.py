"""The shared NER datasets (``../shared/data/ner``): files, splits, label sets and licences.

Domains without an upstream dev split get one held out from train (a fixed
10%, at most 500 sentences), so that prompts, ranks and merge weights are never
chosen on a test split. ``raw=True`` gives the upstream tags untouched.

Split policies of the domains added on 2026-12-02 (CATALOG-ADDED.md):

- litbank, tasteset: no upstream split. Whole books / recipes (never sentences, so no
  text leaks across splits) go 80/10/10 to train/dev/test, shuffled with GROUP_SEED.
- hipe2022_en: sub-corpora joined; hipe2020 has no English train split, so its dev set
  joins train (it alone has org, prod and time); dev = ajmc + topres19th dev; test = all
  three test sets. The licence is the strictest part's (hipe2020 and topres19th are
  CC BY-NC-SA; ajmc alone is CC BY).
- snips2017: train_full is train (dev held out of it as above), validate is test.
- wlp2020: train/dev/test as released in 2020, plus ``test_2020`` (the shared task's test).

``split_counts`` counts per upstream split (``Domain.upstream``), as the catalogs list them.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import UserError
from .conll import read_conll
from .finer_ord import read_finer_ord
from .hipe import read_hipe
from .labels import Label, make_label
from .litbank import read_litbank
from .snips import read_snips
from .tasteset import read_tasteset

HELDOUT_FRACTION = 0.1
HELDOUT_MAX = 500
HELDOUT_SEED = 1234
GROUP_SEED = 20261202
GROUP_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
# Licences whose terms forbid commercial use though their id has no "-NC".
NON_COMMERCIAL_REFS = ("LicenseRef-Reuters-RCV1",)


def is_non_commercial(licence: str) -> bool:
    """True when any part of an SPDX-like expression ("A AND B") is non-commercial."""
    return any("-NC" in part or part in NON_COMMERCIAL_REFS for part in licence.split(" AND "))


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    folder: str
    splits: dict  # split -> tuple of file names
    raw_labels: tuple  # raw tags, most frequent first
    scheme: str = "iob2"
    heldout_dev: bool = field(default=False)
    licence: str = ""  # SPDX-like; "NOASSERTION" when upstream states none
    reader: str = "conll"  # a key of READERS
    upstream: dict | None = None  # upstream split -> files, when ``splits`` regroups them
    grouped: bool = False  # one upstream split: train/dev/test drawn by document group

    @property
    def labels(self) -> list[Label]:
        return [make_label(t, domain=self.name) for t in self.raw_labels]

    @property
    def non_commercial(self) -> bool:
        return is_non_commercial(self.licence)

    @property
    def upstream_splits(self) -> dict:
        return self.upstream or self.splits

    def split_names(self) -> list[str]:
        names = list(self.splits)
        if "dev" not in names and "train" in names:
            names.insert(1, "dev")
        return names


def _d(name, description, splits, labels, licence, folder=None, scheme="iob2", **extra):
    return Domain(name, description, folder or name, splits, tuple(labels.split()), scheme,
                  licence=licence, **extra)


_CROSSNER = {"train": ("train.txt",), "dev": ("dev.txt",), "test": ("test.txt",)}
_BIO = {"train": ("train.tsv",), "dev": ("devel.tsv",), "test": ("test.tsv",)}
_HIPE = "HIPE-2022-v2.1-%s-%s-en.tsv"

DOMAINS = {d.name: d for d in [
    _d("conll2003", "news: Reuters newswire", _CROSSNER, "location person organisation misc",
       "LicenseRef-Reuters-RCV1"),
    _d("crossner_ai", "Wikipedia articles on artificial intelligence", _CROSSNER,
       "algorithm product task field misc metrics researcher organisation conference programlang "
       "university country person location", "MIT"),
    _d("crossner_literature", "Wikipedia articles on literature", _CROSSNER,
       "writer book misc person literarygenre award country poem organisation location magazine event",
       "MIT"),
    _d("crossner_music", "Wikipedia articles on music", _CROSSNER,
       "musicalartist band musicgenre album location award song organisation country misc person "
       "event musicalinstrument", "MIT"),
    _d("crossner_politics", "Wikipedia articles on politics", _CROSSNER,
       "politicalparty politician location organisation election country person misc event", "MIT"),
    _d("crossner_science", "Wikipedia articles on natural science", _CROSSNER,
       "misc scientist astronomicalobject organisation person chemicalcompound location "
       "academicjournal award protein university enzyme discipline chemicalelement event country theory",
       "MIT"),
    _d("mit_movie", "movie search queries, lowercased", {"train": ("trivia10k13train.bio",),
                                                         "test": ("trivia10k13test.bio",)},
       "Plot Actor Genre Year Director Character_Name Opinion Origin Relationship Award Quote Soundtrack",
       "NOASSERTION"),
    _d("mit_restaurant", "restaurant search queries, lowercased",
       {"train": ("restauranttrain.txt",), "test": ("restauranttest.txt",)},
       "Location Cuisine Amenity Restaurant_Name Dish Rating Hours Price", "NOASSERTION"),
    _d("wnut17", "social media: tweets, Reddit, YouTube comments",
       {"train": ("wnut17train.conll",), "dev": ("emerging.dev.conll",),
        "test": ("emerging.test.annotated",)},
       "person location group creative-work product corporation", "CC-BY-4.0"),
    _d("bc5cdr", "biomedical: PubMed abstracts on chemicals and diseases", _BIO, "Chemical Disease",
       "CC-BY-4.0"),
    _d("ncbi_disease", "biomedical: PubMed abstracts on diseases", _BIO, "Disease", "CC-BY-4.0"),
    _d("jnlpba", "biomedical: MEDLINE abstracts on molecular biology",
       {"dev": ("devel.tsv",), "test": ("test.tsv",)}, "protein cell_type DNA cell_line RNA",
       "CC-BY-4.0 AND LicenseRef-GENIA"),
    _d("sec_filings", "finance: SEC filings, US loan agreements",
       {"train": ("FIN5.txt",), "test": ("FIN3.txt",)}, "PER ORG LOC MISC", "CC-BY-3.0", scheme="iob1"),
    _d("gum", "mixed genres: interviews, news, travel guides, how-to guides",
       {"train": ("gum-train.conll",), "test": ("gum-test.conll",)},
       "abstract person place object event organization time substance plant animal quantity",
       "CC-BY-4.0 AND CC-BY-NC-SA-3.0"),  # wikiHow texts are BY-NC-SA
    _d("btc", "social media: tweets", {"train": ("a.conll", "b.conll", "e.conll", "g.conll"),
                                       "dev": ("h.conll",), "test": ("f.conll",)}, "PER ORG LOC", "CC-BY-4.0"),
    # Added 2026-12-02 (CATALOG-ADDED.md).
    _d("bc2gm", "biomedical: MEDLINE sentences on genes and proteins", _BIO, "GENE", "CC-BY-4.0"),
    _d("linnaeus", "biomedical: PMC full-text articles, species names", _BIO, "Species", "CC-BY-4.0"),
    _d("craft", "biomedical: PMC full-text mouse-genomics articles, ontology concepts", _BIO,
       "SO GGP Taxon CHEBI CL GO", "CC-BY-4.0 AND CC-BY-3.0-US"),
    _d("litbank", "literature: English novels 1719-1922, names and noun phrases",
       {s: ("entities/tsv/*.tsv",) for s in ("train", "dev", "test")}, "PER FAC LOC GPE VEH ORG",
       "CC-BY-4.0", reader="litbank", upstream={"all": ("entities/tsv/*.tsv",)}, grouped=True),
    _d("hipe2022_en", "historical: OCR'd 19th-century newspapers and classical commentaries",
       {"train": (_HIPE % ("ajmc", "train"), _HIPE % ("hipe2020", "dev"), _HIPE % ("topres19th", "train")),
        "dev": (_HIPE % ("ajmc", "dev"), _HIPE % ("topres19th", "dev")),
        "test": (_HIPE % ("ajmc", "test"), _HIPE % ("hipe2020", "test"), _HIPE % ("topres19th", "test"))},
       "loc pers scope work building street org prod time date object",
       "CC-BY-4.0 AND CC-BY-NC-SA-4.0", reader="hipe",
       upstream={f"{c}_{s}": (_HIPE % (c, s),) for c, s in (
           ("ajmc", "train"), ("ajmc", "dev"), ("ajmc", "test"), ("hipe2020", "dev"), ("hipe2020", "test"),
           ("topres19th", "train"), ("topres19th", "dev"), ("topres19th", "test"))}),
    _d("wlp2020", "lab protocols: wet-lab procedure steps (protocols.io)",
       {s: (f"{folder}/Conll_Format/*_conll.txt",) for s, folder in (
           ("train", "train_data"), ("dev", "dev_data"), ("test", "test_data"), ("test_2020", "test_data_2020"))},
       "Action Reagent Modifier Location Amount Time Method Device Temperature Concentration "
       "Measure-Type Numerical Speed Generic-Measure Size Mention Seal pH", "MIT"),
    _d("tasteset", "recipes: ingredient lists (quantities, units, foods)",
       {s: ("TASTEset.csv",) for s in ("train", "dev", "test")},
       "FOOD QUANTITY UNIT PROCESS PHYSICAL_QUALITY COLOR TRADE_NAME TASTE PURPOSE EXAMPLE DIET PART "
       "POSSIBLE_SUBSTITUTE EXCLUDED EXCLUSIVE", "MIT",
       reader="tasteset", upstream={"all": ("TASTEset.csv",)}, grouped=True),
    _d("finer_ord", "finance: financial news articles",
       {"train": ("train.csv",), "dev": ("val.csv",), "test": ("test.csv",)}, "ORG LOC PER",
       "CC-BY-NC-4.0", reader="finer_ord"),
    _d("snips2017", "voice-assistant queries: music, weather, restaurants, books, films",
       {"train": ("*/train_*_full.json",), "test": ("*/validate_*.json",)},
       "object_type object_name playlist timeRange rating_value artist music_item city restaurant_type "
       "spatial_relation rating_unit playlist_owner best_rating party_size_number state object_select "
       "country movie_name service movie_type year location_name entity_name sort condition_temperature "
       "object_location_type condition_description restaurant_name party_size_description "
       "object_part_of_series_type geographic_poi current_location served_dish cuisine track album "
       "facility poi genre", "CC0-1.0", reader="snips",
       upstream={"train_full": ("*/train_*_full.json",), "validate": ("*/validate_*.json",)}),
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


READERS = {
    "conll": lambda path, domain, prefix: read_conll(path, scheme=domain.scheme, id_prefix=prefix),
    "hipe": lambda path, domain, prefix: read_hipe(path, id_prefix=prefix, lowercase=True),
    "litbank": lambda path, domain, prefix: read_litbank(path, id_prefix=prefix),
    "tasteset": lambda path, domain, prefix: read_tasteset(path, id_prefix=prefix),
    "finer_ord": lambda path, domain, prefix: read_finer_ord(path, id_prefix=prefix),
    "snips": lambda path, domain, prefix: read_snips(path, id_prefix=prefix),
}


def _paths(domain: Domain, pattern: str, root: Path) -> list[Path]:
    """A file name, or a glob (one file per protocol, per book, per intent), sorted."""
    folder = root / domain.folder
    paths = sorted(folder.glob(pattern)) if any(c in pattern for c in "*?[") else [folder / pattern]
    if not paths or not all(p.is_file() for p in paths):
        raise UserError(f"dataset file not found: {folder / pattern} "
                        f"(set SAMEDGE_DATA to the shared/data/ner folder)")
    return paths


@lru_cache(maxsize=64)
def _read_pattern(name: str, pattern: str, root: str) -> tuple:
    domain = get_domain(name)
    docs = []
    for path in _paths(domain, pattern, Path(root)):
        docs.extend(READERS[domain.reader](path, domain, f"{domain.name}/{path.stem}"))
    return tuple(docs)


def _read_files(name: str, patterns, root: str) -> tuple:
    return tuple(d for pattern in patterns for d in _read_pattern(name, pattern, root))


def group_of(doc_id: str) -> str:
    """The book / recipe of a document: its id up to the sentence number."""
    return doc_id.rsplit("-", 1)[0]


def group_splits(groups, seed: int = GROUP_SEED) -> dict:
    """Group -> split, whole groups shuffled with ``seed`` and cut at GROUP_FRACTIONS."""
    order = sorted(set(groups))
    random.Random(seed).shuffle(order)
    n_train = round(len(order) * GROUP_FRACTIONS["train"])
    n_dev = round(len(order) * GROUP_FRACTIONS["dev"])
    return {g: "train" if i < n_train else "dev" if i < n_train + n_dev else "test"
            for i, g in enumerate(order)}


@lru_cache(maxsize=64)
def _load_raw(name: str, split: str, root: str) -> tuple:
    domain = get_domain(name)
    if split not in domain.splits:
        raise UserError(f"domain {name!r} has no {split!r} split; it has {', '.join(domain.split_names())}")
    docs = _read_files(name, domain.splits[split], root)
    if domain.grouped:
        assigned = group_splits(group_of(d["id"]) for d in docs)
        docs = tuple(d for d in docs if assigned[group_of(d["id"])] == split)
    return docs


def _heldout_ids(train_docs) -> set:
    n = min(HELDOUT_MAX, max(1, int(len(train_docs) * HELDOUT_FRACTION)))
    rng = random.Random(HELDOUT_SEED)
    return {d["id"] for d in rng.sample(list(train_docs), n)}


def _copy(doc: dict) -> dict:
    return dict(doc, entities=[dict(e) for e in doc["entities"]])


def _normalise(doc: dict, domain: str) -> dict:
    ents = [dict(e, label=make_label(e["label"], domain=domain).name) for e in doc["entities"]]
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
    return [_copy(d) for d in docs] if raw else [_normalise(d, name) for d in docs]


def split_counts(name: str, root: str | Path | None = None) -> dict:
    """Counts per upstream split (as CATALOG.md and CATALOG-ADDED.md list them), of the
    documents as samedge reads them (after the litbank, tasteset and hipe policies)::

        {split: {"sentences": int, "entities": int, "labels": {raw tag: mentions}}}
    """
    domain = get_domain(name)
    root = str(Path(root) if root else data_root())
    out = {}
    for split, files in domain.upstream_splits.items():
        docs = _read_files(name, files, root)
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


TRAIN_HOLDOUT_SEED = 1234


def training_splits(name: str) -> tuple[list[dict], list[dict]]:
    """(train, dev) documents to train an expert of a domain on: its train and dev splits, or, for a
    domain without a train split (jnlpba ships dev and test only), its dev split minus a fixed 10%
    held out as dev."""
    if "train" in get_domain(name).splits:
        return load_split(name, "train"), load_split(name, "dev")
    docs = load_split(name, "dev")
    held = set(random.Random(TRAIN_HOLDOUT_SEED).sample(range(len(docs)), max(1, len(docs) // 10)))
    return ([doc for i, doc in enumerate(docs) if i not in held],
            [doc for i, doc in enumerate(docs) if i in held])
