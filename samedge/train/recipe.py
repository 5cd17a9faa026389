"""How one training example is shown to an expert: the transfer recipe.

An expert that always sees its domain's labels under the same names learns the
names, not the task: asked for CoNLL's types as "human, place, institution,
other name" it answers "person", and every answer is dropped. So each example
varies what the prompt lists, with a seeded RNG (pure functions: the same seed
gives the same example, so a resumed run sees what the interrupted one would):

- **renames**: with probability ``rename_prob`` an example shows some labels
  under another name (a style variant such as ``PER``/``Person``, a synonym, or a
  neutral code such as ``type 3``), the description unchanged, and the answer
  uses the shown name. The model must read the list to answer.
- **subsets**: with probability ``subset_prob`` only a random non-empty part of
  the domain's labels is listed; mentions of the others leave the answer.
- **absent labels**: 0..``max_negatives`` labels the domain does not use, drawn
  from the whole vocabulary, but never one that overlaps a listed label's
  concept (listing "place" beside "location" would teach that places are never
  tagged).

The options are keys of train_defaults.toml; which values win was measured on
dev splits (BENCHMARKS.md, "Training recipe").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.labels import DESCRIPTIONS, Label

# Readable label names that name overlapping concepts: one is never an absent label beside another.
CONCEPT_GROUPS = [
    {"person", "researcher", "writer", "politician", "scientist", "actor", "director", "musical artist",
     "character name"},
    {"location", "place", "country", "geopolitical entity", "facility", "city", "street", "building"},
    {"organization", "corporation", "group", "band", "university", "political party", "conference",
     "court", "company"},
    {"miscellaneous", "creative work", "product", "book", "song", "album", "poem", "magazine", "work",
     "event", "award", "election"},
    {"time", "date", "year", "hours", "date or time"},
    {"quantity", "money", "price", "amount"},
    {"chemical", "chemical compound", "drug", "chemical element", "chemical entity", "substance"},
    {"protein", "gene", "DNA", "RNA", "enzyme", "gene or gene product"},
    {"genre", "music genre", "literary genre"},
    {"disease"},
]

# A few everyday synonyms. The names a held-out evaluation uses (e.g. "human", "place",
# "institution", "other name" for CoNLL's types) are deliberately absent, so that the
# recipe ablation measures transfer to names the expert never saw.
SYNONYMS = {
    "person": ["people", "individual", "person name", "PERSON"],
    "location": ["geographic location", "LOCATION", "locale"],
    "organization": ["organisation", "company or agency", "ORGANIZATION"],
    "miscellaneous": ["misc", "other", "various"],
    "disease": ["disorder", "medical condition", "illness"],
    "chemical": ["chemical substance", "compound"],
    "protein": ["protein name"],
    "product": ["product name", "item"],
    "date": ["calendar date", "day"],
    "money": ["monetary amount", "sum of money"],
}


@dataclass(frozen=True)
class Recipe:
    max_negatives: int = 3
    rename_prob: float = 0.0
    subset_prob: float = 0.0

    @classmethod
    def from_config(cls, config: dict) -> "Recipe":
        return cls(config["max_negatives"], config.get("rename_prob", 0.0), config.get("subset_prob", 0.0))


def vocabulary() -> list[Label]:
    """Every label samedge knows a description for: absent labels are drawn from these."""
    return [Label(name, desc) for name, desc in DESCRIPTIONS.items()]


def _group_of(name: str) -> frozenset:
    for group in CONCEPT_GROUPS:
        if name in group:
            return frozenset(group)
    return frozenset({name})


def _alias(label: Label, rng: random.Random) -> str:
    """Another name for ``label``: a style variant, a synonym, or a neutral code."""
    words = label.name.split()
    kind = rng.choice(["style", "synonym", "code"])
    if kind == "synonym" and label.name in SYNONYMS:
        return rng.choice(SYNONYMS[label.name])
    if kind == "code":
        return rng.choice(["type", "label", "category", "tag", "class"]) + rng.choice([" ", "_", " #"]) + \
            str(rng.randint(1, 9))
    styles = ["_".join(words).upper(), " ".join(w.capitalize() for w in words), "_".join(words),
              "".join(w.capitalize() for w in words)]
    if len(words) == 1 and len(label.name) > 4:
        styles.append(label.name[:3].upper())  # PER, LOC, ORG
    return rng.choice(styles)


def shown_labels(domain_labels: list[Label], pool: list[Label], rng: random.Random,
                 recipe: Recipe) -> list[tuple[Label, str | None]]:
    """The labels one training prompt lists, shuffled, each with the domain label it stands
    for (None for an absent label)."""
    kept = list(domain_labels)
    if len(kept) > 1 and rng.random() < recipe.subset_prob:
        kept = rng.sample(kept, rng.randint(1, len(kept) - 1))
    taken = set().union(*(_group_of(lab.name) for lab in domain_labels)) | {lab.name for lab in domain_labels}
    candidates = [lab for lab in pool if lab.name not in taken and not (_group_of(lab.name) & taken)]
    negatives = rng.sample(candidates, min(len(candidates), rng.randint(0, recipe.max_negatives)))

    shown = [(lab, lab.name) for lab in kept] + [(lab, None) for lab in negatives]
    if rng.random() < recipe.rename_prob:
        names = [lab.name.lower() for lab, _ in shown]
        for i, (lab, source) in enumerate(shown):
            if rng.random() < 0.5:
                alias = _alias(lab, rng)
                if alias.lower() not in names[:i] + names[i + 1:]:  # two labels never share a name
                    names[i] = alias.lower()
                    shown[i] = (Label(alias, lab.description), source)
    rng.shuffle(shown)
    return shown


def answer_entities(entities: list[dict], shown: list[tuple[Label, str | None]]) -> list[dict]:
    """The gold entities the answer lists: those of shown labels, under their shown names."""
    shown_name = {source: lab.name for lab, source in shown if source is not None}
    return [dict(e, label=shown_name[e["label"]]) for e in entities if e["label"] in shown_name]
