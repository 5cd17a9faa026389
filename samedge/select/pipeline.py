"""Glue for ``build``: library experts and a target profile in, a :class:`SelectionReport` out.

The strategies themselves see plain mappings (``{name: {"centroid", "embedder", "expert"}}``);
this module is the only place that knows the library's manifest layout
(``manifest["centroid"] = {"embedder", "texts", "vector"}``).
"""

from __future__ import annotations

from typing import Sequence

from ..config import build_default
from ..errors import UserError
from . import registry, similarity
from .weighting import DEFAULT_TEMPERATURE, DEFAULT_WEIGHTING

DEFAULT_K = build_default("k")


def expert_inputs(experts: Sequence, need_centroids: bool = True) -> dict[str, dict]:
    """``{name: {"centroid": [...], "embedder": fingerprint, "expert": expert}}`` from library experts.

    An expert without a centroid is refused only when the strategy needs centroids.
    """
    out = {}
    for expert in experts:
        if expert.name in out:
            raise UserError(f"two experts are named {expert.name!r}; names must be unique in a library")
        stored = expert.manifest.get("centroid") or {}
        if need_centroids and stored.get("vector") is None:
            raise UserError(f"expert {expert.name!r} has no domain centroid; compute it with "
                            f"`samedge experts centroid {expert.name}`")
        out[expert.name] = {"centroid": stored.get("vector"), "embedder": stored.get("embedder"), "expert": expert}
    return out


def select_experts(target, experts: Sequence, *, k: int = DEFAULT_K, strategy: str = "similarity",
                   weighting: str = DEFAULT_WEIGHTING, temperature: float = DEFAULT_TEMPERATURE,
                   threads: int | None = None, embedder=None, **strategy_inputs) -> registry.SelectionReport:
    """Rank ``experts`` for ``target`` (``.texts``, and whatever other strategies read) and keep the top ``k``.

    ``embedder``: an already loaded ``samedge.embed.Embedder`` (default: the
    shipped one, with ``threads``). Other keyword inputs (``base``, ``sample``,
    ``seed``, ...) are passed on to the strategy, for those that need them.
    """
    chosen = registry.get_strategy(strategy)  # unknown names fail before the embedder loads
    if chosen.run is not None:
        return chosen.run(target, experts, k=k, weighting=weighting, temperature=temperature,
                          threads=threads, embedder=embedder, **strategy_inputs)
    if not experts:
        raise UserError("the expert library is empty: there is nothing to select")
    notes, fingerprint, inputs = [], None, dict(strategy_inputs)
    uses_centroids = chosen.fills == "similarity" or "target_centroid" in chosen.needs
    if uses_centroids:
        if embedder is None:
            from ..embed import Embedder
            embedder = Embedder.load(threads=threads)
        centroid, notes = similarity.target_centroid(target.texts, embedder, seed=strategy_inputs.get("seed") or 0)
        fingerprint = embedder.fingerprint
        inputs.update(target_centroid=centroid, embedder=fingerprint)
    report = registry.select_with(strategy, expert_inputs(experts, uses_centroids), k, weighting=weighting,
                                  temperature=temperature, target=target, threads=threads, **inputs)
    report.embedder = fingerprint
    report.notes = notes + report.notes
    return report


@registry.register_composite("combined", fills="performance",
                             description="the top 2k by similarity, ranked by performance on sampled target instances")
def select_combined(target, experts: Sequence, *, k: int = DEFAULT_K, candidates: int | None = None,
                    weighting: str = DEFAULT_WEIGHTING, temperature: float = DEFAULT_TEMPERATURE,
                    threads: int | None = None, embedder=None, **inputs) -> registry.SelectionReport:
    """Both criteria: the top ``candidates`` (default 2k) by similarity are scored on sampled target
    instances; the top ``k`` of those by performance (``k="auto"``: those near the best) are merged,
    weighted by performance."""
    by_similarity = select_experts(target, experts, k=len(experts), strategy="similarity", weighting="uniform",
                                   threads=threads, embedder=embedder, **inputs)
    similarity_of = {e.name: e.similarity for e in by_similarity.experts}
    if candidates is None:  # 2k, and as many as for the default k=3 when k is chosen per target
        candidates = 2 * (registry.AUTO_K_MAX_SHORTLIST if k == registry.AUTO_K else k)
    shortlist = set(by_similarity.selected_names()[:candidates])
    report = select_experts(target, [e for e in experts if e.name in shortlist], k=k, strategy="performance",
                            weighting=weighting, temperature=temperature, threads=threads, **inputs)
    for row in report.experts:
        row.similarity = similarity_of[row.name]
    report.experts += [registry.ExpertScore(e.name, similarity=e.similarity, rank=len(report.experts) + i)
                       for i, e in enumerate((e for e in by_similarity.experts if e.name not in shortlist), 1)]
    report.strategy = "combined"
    report.embedder = by_similarity.embedder
    report.notes = by_similarity.notes + [f"shortlist: top {len(shortlist)} by similarity, then ranked by performance"]
    return report
