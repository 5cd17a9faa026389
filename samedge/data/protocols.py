"""The evaluation protocols' domain lists: one place for the library and the benchmarks.

- **P** (the paper's setting): CrossNER and MIT are the targets; the library is every other domain.
- **L**: leave one domain out, over every domain.
- **N**: the domains added on 2026-12-02 are the targets, the original 15 the library: transfer to
  domains nobody tuned anything on.
"""

from __future__ import annotations

ORIGINAL = ["conll2003", "wnut17", "bc5cdr", "ncbi_disease", "jnlpba", "sec_filings", "gum", "btc",
            "crossner_ai", "crossner_literature", "crossner_music", "crossner_politics", "crossner_science",
            "mit_movie", "mit_restaurant"]
ADDED = ["bc2gm", "linnaeus", "craft", "litbank", "hipe2022_en", "wlp2020", "tasteset", "finer_ord", "snips2017"]
ALL = ORIGINAL + ADDED
# The shipped library (models/experts): the original 15 and the added domains that bring types no
# original expert knows (dates, times, works, buildings and streets; species), a new genre
# (financial news, fiction) or a second gene tagger. 20 experts at samedge.library.SHIPPED_RANK fill
# models/'s 100 MB. wlp2020 and snips2017 need max_length 576 (label lists of 18 and 39 types), so a
# step costs about twice as much.
# Protocols L and P use experts for every domain of ALL.
SHIPPED = ORIGINAL + ["hipe2022_en", "linnaeus", "finer_ord", "bc2gm", "litbank"]

P_TARGETS = ["crossner_ai", "crossner_literature", "crossner_music", "crossner_politics", "crossner_science",
             "mit_movie", "mit_restaurant"]
P_SOURCES = [d for d in ALL if d not in P_TARGETS]
N_TARGETS = ADDED
N_SOURCES = ORIGINAL


def library_for(protocol: str, target: str) -> list[str]:
    """The domains whose experts form the library when ``target`` is the target under ``protocol``."""
    if protocol == "P":
        return P_SOURCES
    if protocol == "N":
        return N_SOURCES
    if protocol == "L":
        return [d for d in ALL if d != target]
    raise ValueError(f"unknown protocol {protocol!r}")
