"""Expert selection (SaM step 1): score the library's experts for a target, keep the top k, weight them.

- :mod:`.registry`: named strategies (``register``, ``get_strategy``), ``select_with``, and the
  :class:`SelectionReport` that ``build`` stores in bundle.json and prints;
- :mod:`.similarity`: cosine between target and expert domain centroids;
- :mod:`.weighting`: scores to merge weights (softmax, normalized, uniform);
- :mod:`.pipeline`: the glue from library experts and a target profile (``select_experts``), and the
  ``combined`` strategy (similarity shortlist, then performance).

Nothing here imports torch, or knows how experts are stored.
"""

from __future__ import annotations

from typing import Mapping, Sequence

# The built-in strategies register themselves; importing any module of this package runs this first.
from . import performance as _performance  # noqa: F401  (registers "performance")
from . import pipeline as _pipeline  # noqa: F401  (registers "combined")
from . import similarity as _similarity  # noqa: F401  (registers "similarity")
from .registry import (STRATEGIES, TIE_RULE, ExpertScore, SelectionReport, Strategy, get_strategy,
                       ranking, register, select_with, strategy_names, top_k)
from .similarity import cosine_scores, target_centroid
from .weighting import DEFAULT_TEMPERATURE, DEFAULT_WEIGHTING, WEIGHTINGS


def select_by_similarity(target_centroid: Sequence[float], experts: Mapping[str, Mapping], k: int, *,
                         weighting: str = DEFAULT_WEIGHTING, temperature: float = DEFAULT_TEMPERATURE,
                         embedder: str | None = None) -> SelectionReport:
    """Top-k experts by cosine similarity, with merge weights.

    ``experts``: ``{name: {"centroid": list[float], "embedder": fingerprint}}``;
    ``embedder``: the target centroid's fingerprint (every expert must match it).
    """
    report = select_with("similarity", experts, k, weighting=weighting, temperature=temperature,
                         target_centroid=target_centroid, embedder=embedder)
    report.embedder = _similarity.check_embedder(experts, embedder)
    return report


__all__ = ["select_by_similarity", "select_with", "register", "get_strategy", "strategy_names", "STRATEGIES",
           "Strategy", "ExpertScore", "SelectionReport", "TIE_RULE", "ranking", "top_k", "cosine_scores",
           "target_centroid", "WEIGHTINGS", "DEFAULT_WEIGHTING", "DEFAULT_TEMPERATURE"]
