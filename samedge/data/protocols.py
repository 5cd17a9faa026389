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
# The shipped library (models/experts): the original 15 and five added domains that bring types no
# original expert knows (dates, times, works, buildings and streets; species; facilities and
# vehicles) or a new genre (financial news, a second gene corpus), within models/'s 100 MB at
# samedge.library.SHIPPED_RANK. wlp2020 and snips2017 were left out for time: their label lists make
# prompts of about 550 tokens, so a step costs about twice as much; tasteset's about 1.3 times.
# Protocols L and P use experts for every domain of ALL.
SHIPPED = ORIGINAL + ["hipe2022_en", "linnaeus", "litbank", "finer_ord", "bc2gm"]

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
