"""Readable label names and short descriptions, per domain.

Prompts use the readable name ("musical artist"), never the raw tag
("musicalartist"): a zero-shot expert can only transfer what it can read.
Shared concepts get one name across domains (PER, person -> "person";
organisation, ORG -> "organization").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    description: str

    def to_dict(self):
        return {"name": self.name, "description": self.description}


# Shared vocabulary: readable name -> description.
DESCRIPTIONS = {
    "person": "names of people",
    "location": "places, cities, regions, landmarks",
    "organization": "companies, agencies, institutions, teams",
    "miscellaneous": "other names: nationalities, events, products, works",
    "country": "names of countries",
    "event": "named events, wars, festivals, ceremonies",
    "award": "prizes and honours",
    "university": "universities and colleges",
    "algorithm": "algorithms and models",
    "product": "named products, software, devices",
    "task": "AI tasks and problems",
    "field": "fields of study",
    "metric": "evaluation measures",
    "researcher": "names of researchers",
    "conference": "conferences and workshops",
    "programming language": "programming languages",
    "writer": "authors and poets",
    "book": "titles of books and novels",
    "literary genre": "genres of literature",
    "poem": "titles of poems",
    "magazine": "magazines and journals",
    "musical artist": "singers, composers, musicians",
    "band": "music groups",
    "music genre": "genres of music",
    "album": "album titles",
    "song": "song titles",
    "musical instrument": "instruments",
    "political party": "political parties",
    "politician": "names of politicians",
    "election": "named elections and referendums",
    "scientist": "names of scientists",
    "astronomical object": "stars, planets, galaxies",
    "chemical compound": "chemical compounds",
    "academic journal": "scientific journals",
    "protein": "proteins and genes",
    "enzyme": "enzymes",
    "discipline": "scientific disciplines",
    "chemical element": "chemical elements",
    "theory": "scientific theories",
    "plot": "plot elements of a movie",
    "actor": "names of actors",
    "genre": "movie genres",
    "year": "years or decades",
    "director": "names of directors",
    "character name": "names of movie characters",
    "opinion": "opinions and ratings of a movie",
    "origin": "source material or origin",
    "relationship": "relation to other movies",
    "quote": "quotes from a movie",
    "soundtrack": "songs or scores of a movie",
    "cuisine": "types of food or cuisine",
    "amenity": "features of a restaurant",
    "restaurant name": "names of restaurants",
    "dish": "dishes and drinks",
    "rating": "ratings and quality",
    "hours": "opening times",
    "price": "price levels",
    "group": "groups, bands, teams",
    "creative work": "titles of books, songs, films, shows",
    "corporation": "companies and brands",
    "chemical": "chemicals and drugs",
    "disease": "diseases and symptoms",
    "cell type": "types of cells",
    "DNA": "DNA sequences, genes, promoters",
    "cell line": "cell lines",
    "RNA": "RNA molecules",
    "abstract": "abstract notions and ideas",
    "place": "places and locations",
    "object": "physical objects",
    "time": "times and dates",
    "substance": "materials and substances",
    "plant": "plants",
    "animal": "animals",
    "quantity": "amounts and measures",
    # Labels used by shipped target profiles.
    "court": "courts and tribunals",
    "law": "statutes, acts, regulations, treaties",
    "date": "calendar dates",
    "money": "amounts of money",
    "case": "names of legal cases",
    "drug": "medicines and drugs",
    "gene": "genes",
    "hashtag": "hashtags and topics",
}

# Raw tag -> readable name, for raw tags that differ from their readable name.
RENAMES = {
    "organisation": "organization", "org": "organization", "ORG": "organization",
    "per": "person", "PER": "person", "loc": "location", "LOC": "location",
    "misc": "miscellaneous", "MISC": "miscellaneous",
    "programlang": "programming language", "metrics": "metric",
    "literarygenre": "literary genre", "musicalartist": "musical artist",
    "musicgenre": "music genre", "musicalinstrument": "musical instrument",
    "politicalparty": "political party", "astronomicalobject": "astronomical object",
    "chemicalcompound": "chemical compound", "academicjournal": "academic journal",
    "chemicalelement": "chemical element", "Character_Name": "character name",
    "Restaurant_Name": "restaurant name", "creative-work": "creative work",
    "cell_type": "cell type", "cell_line": "cell line",
}
KEEP_CASE = {"DNA", "RNA"}


def readable_name(raw: str) -> str:
    if raw in RENAMES:
        return RENAMES[raw]
    if raw in KEEP_CASE:
        return raw
    return raw.replace("_", " ").replace("-", " ").lower()


def make_label(raw: str, description: str | None = None) -> Label:
    name = readable_name(raw)
    return Label(name, description or DESCRIPTIONS.get(name, name))


def parse_label_spec(spec: str) -> list[Label]:
    """``"person,court=courts and tribunals"`` -> Labels (used by ``--labels``)."""
    labels = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, desc = item.partition("=")
        labels.append(make_label(name.strip(), desc.strip() or None))
    return labels
