"""Readable label names and short descriptions, per domain.

Prompts use the readable name ("musical artist"), never the raw tag
("musicalartist"): a zero-shot expert can only transfer what it can read.
Shared concepts get one name across domains (PER, person -> "person";
organisation, ORG -> "organization").

Outputs never show the readable name: every entity carries the label's ``tag``,
the user's own name for it ("PER", "LEGISLATION/ACT"), exactly as given. The
readable name and description exist only inside the prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Label:
    """One entity type: ``name`` and ``description`` are what the prompt shows ("person"),
    ``tag`` is what entities carry in every output ("PER"); it defaults to ``name``."""
    name: str
    description: str
    tag: str = ""

    def __post_init__(self):
        if not self.tag:
            object.__setattr__(self, "tag", self.name)

    def to_dict(self):
        return {"name": self.name, "description": self.description, "tag": self.tag}

    @classmethod
    def from_dict(cls, d: dict) -> "Label":
        """Inverse of ``to_dict``; manifests written before tags existed have none (tag = name)."""
        return cls(d["name"], d["description"], d.get("tag") or d["name"])


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
    # Domains added on 2026-12-02 (CATALOG-ADDED.md).
    "gene or gene product": "genes and the proteins or RNAs they encode",
    "organism": "species and other taxa: mice, humans, E. coli",
    "sequence feature": "DNA and RNA features: genes, promoters, exons, alleles, mutations",
    "cellular component": "parts of a cell: nucleus, membrane, chromosome",
    "facility": "buildings and built places: houses, rooms, roads, bridges",
    "geopolitical entity": "places with a government: countries, cities, states",
    "vehicle": "ships, carriages, trains, cars",
    "passage reference": "references to lines or verses of a text: v. 123, l. 45",
    "building": "named buildings: churches, inns, halls, stations",
    "street": "named streets, squares and roads",
    "action": "the verb of a lab step: add, centrifuge, incubate",
    "reagent": "substances and solutions used in a protocol",
    "modifier": "words qualifying an action or entity: gently, fresh, sterile",
    "lab location": "lab containers and places: tube, plate, bench, ice",
    "amount": "amounts of a substance: 5 ml, 2 drops",
    "duration": "lengths of time: 5 minutes, overnight",
    "method": "lab techniques: PCR, centrifugation, vortexing",
    "device": "lab devices and instruments: centrifuge, pipette",
    "temperature": "temperatures: 37 °C, room temperature, on ice",
    "concentration": "concentrations: 10 mM, 70%",
    "measure type": "what is measured: volume, OD, weight",
    "number": "numbers that are not amounts or measures",
    "speed": "speeds: 5000 rpm, 10,000 x g",
    "generic measure": "other measurements: 3 cycles, 2 times",
    "size": "sizes and lengths: 10 cm, 0.2 µm",
    "mention": "words that refer back to an earlier entity: it, the mixture",
    "seal": "lids and seals: cap, parafilm, foil",
    "pH": "acidity: pH 7.4",
    "food": "foods and ingredients",
    "unit": "units of measure: cup, ounce, tablespoon",
    "process": "how a food is prepared: chopped, melted, frozen",
    "physical quality": "state, texture or size of a food: large, fresh, boneless",
    "color": "colours: red, green, white",
    "trade name": "brand and product names",
    "taste": "flavours: sweet, salty, unsweetened",
    "purpose": "what an ingredient is for: for frying, for garnish",
    "example": "examples given for an ingredient: such as basil",
    "diet": "diet labels: low-fat, gluten-free, vegan",
    "part": "part of a food: breast, leaves, zest",
    "possible substitute": "an alternative ingredient",
    "excluded": "what to leave out of an ingredient",
    "exclusive": "what an ingredient must be exactly",
    "object type": "the kind of thing asked for: TV show, book, photograph",
    "playlist": "playlist names",
    "date or time": "dates, times and periods: tomorrow night, at 5 pm",
    "rating value": "the rating given: 5, four",
    "music item": "song, album, track, tune as a word",
    "city": "cities and towns",
    "restaurant type": "kinds of place to eat: bar, diner, pub",
    "spatial relation": "nearby, close to, within walking distance",
    "rating unit": "points, stars",
    "playlist owner": "whose playlist: my, Jessica's",
    "best rating": "the top of a rating scale: out of 6",
    "party size": "the number of people in a booking",
    "party description": "who a booking is for: my wife and me",
    "state": "states and provinces",
    "selector": "which one: this, the last, current",
    "movie title": "film titles",
    "music service": "streaming services: Spotify, Deezer",
    "movie type": "kinds of film: animated movies",
    "cinema name": "names of cinemas and cinema chains",
    "playlist entry": "a song, album or artist to add to a playlist",
    "sort order": "best, top-rated, most popular",
    "weather temperature": "hot, cold, freezing",
    "venue type": "kinds of venue: cinema, movie theatre",
    "weather condition": "rain, snow, sunny",
    "series part": "saga, chronicle, series",
    "landmark": "geographic landmarks and natural sites",
    "current location": "here, my location, current position",
    "point of interest": "places a booking or forecast is for: a town, a hostel, a campus",
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
    # Domains added on 2026-12-02: unambiguous abbreviations only.
    "GENE": "gene or gene product", "GGP": "gene or gene product", "Species": "organism",
    "Taxon": "organism", "SO": "sequence feature", "CHEBI": "chemical", "CL": "cell type",
    "GO": "cellular component", "FAC": "facility", "GPE": "geopolitical entity", "VEH": "vehicle",
    "pers": "person", "prod": "product",
}
# A domain's own renames, applied first: plain words ("sort", "track", "Time") that mean
# something narrower there than in a user's file, or another thing than elsewhere.
DOMAIN_RENAMES = {
    "wlp2020": {"Location": "lab location",  # tubes and benches, not places (mit_restaurant)
                "Time": "duration", "Numerical": "number"},
    "hipe2022_en": {"scope": "passage reference", "work": "creative work"},
    "snips2017": {
        "object_name": "creative work", "timeRange": "date or time", "artist": "musical artist",
        "party_size_number": "party size", "party_size_description": "party description",
        "object_select": "selector", "movie_name": "movie title", "service": "music service",
        "location_name": "cinema name", "entity_name": "playlist entry", "sort": "sort order",
        "condition_temperature": "weather temperature", "condition_description": "weather condition",
        "object_location_type": "venue type", "object_part_of_series_type": "series part",
        "geographic_poi": "landmark", "poi": "point of interest", "served_dish": "dish",
        "track": "song", "facility": "amenity", "genre": "music genre",
    },
}
KEEP_CASE = {"DNA", "RNA", "pH"}


def readable_name(raw: str, domain: str | None = None) -> str:
    """The readable name of a raw tag; ``domain`` applies that domain's own renames first."""
    own = DOMAIN_RENAMES.get(domain, {})
    if raw in own:
        return own[raw]
    if raw in RENAMES:
        return RENAMES[raw]
    if raw in KEEP_CASE:
        return raw
    return raw.replace("_", " ").replace("-", " ").lower()


def make_label(raw: str, description: str | None = None, tag: str | None = None,
               domain: str | None = None) -> Label:
    """samedge's label for the raw tag ``raw``: its readable name and description (unless one is
    given), tagged ``tag``, by default the readable name too (the catalog's data and the training
    recipe relabel their entities with readable names). ``domain`` picks that catalog domain's
    renames of plain words (see DOMAIN_RENAMES)."""
    name = readable_name(raw, domain)
    return Label(name, description or DESCRIPTIONS.get(name, name), tag=tag or name)


def user_label(raw: str, description: str | None = None) -> Label:
    """A label the user named (``--labels``, a profile's [labels]): samedge's readable name in the
    prompt, and ``raw`` exactly as given as the tag that entities carry."""
    return make_label(raw, description, tag=raw)


def label_key(name: str) -> str:
    """How answers are matched to labels: "Character_Name", "character-name" and
    "Character name" are one label."""
    return " ".join(re.split(r"[\s_-]+", name.lower())).strip()


def label_conflict(labels) -> str | None:
    """Why this label set cannot be used, or None: two labels the prompt would show under one
    name (the model could not tell them apart, nor the parser map its answers back), or one tag twice."""
    names, tags = {}, {}
    for lab in labels:
        if lab.tag in tags:
            return f"label {lab.tag!r} is listed twice"
        tags[lab.tag] = lab
        other = names.setdefault(label_key(lab.name), lab)
        if other is not lab:
            return (f"labels {other.tag!r} and {lab.tag!r} would both be {lab.name!r} in the prompt, "
                    f"so the model could not tell them apart; keep one of them")
    return None


def check_labels(labels) -> list:
    """``labels`` as a list, or a UserError naming the two labels that collide."""
    labels = list(labels)
    problem = label_conflict(labels)
    if problem:
        raise UserError(problem)
    return labels


def tag_mapper(labels):
    """raw label -> the tag of the label it denotes (the same tag, else the same readable name),
    or the raw label unchanged; so gold written as "PER" scores against a label tagged "person"."""
    by_tag = {lab.tag: lab.tag for lab in labels}
    by_key = {label_key(lab.name): lab.tag for lab in labels}
    return lambda raw: by_tag.get(raw) or by_key.get(label_key(readable_name(raw)), raw)


def parse_label_spec(spec: str) -> list[Label]:
    """``"PER=names of people,ORG"`` -> Labels tagged PER and ORG (used by ``--labels``): a
    description after ``=``, else samedge's own for the readable name."""
    labels = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, desc = item.partition("=")
        if not name.strip():
            raise UserError(f"--labels: {item!r} has no label name before '='")
        labels.append(user_label(name.strip(), desc.strip() or None))
    return check_labels(labels)
