"""The selection-strategy registry and the report every strategy produces.

In the manner of mergekit's ``merge_methods``: a strategy is registered under
a name with :func:`register`, looked up with :func:`get_strategy`, and run by
:func:`select_with`, which ranks the experts by the strategy's score, keeps the
top k and turns the kept scores into merge weights.

A strategy is a function ``score(experts, **inputs) -> {name: score}`` (higher
is better) that fills one field of :class:`ExpertScore` (``similarity`` or
``performance``). ``experts`` maps an expert name to whatever the strategy
needs (for similarity: ``{"centroid": [...], "embedder": fingerprint}``); the
other inputs are named in ``needs`` and checked before the call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping

from ..config import AUTO_K
from ..errors import UserError
from . import weighting as weighting_mod

SCORE_FIELDS = ("similarity", "performance")
TIE_RULE = "higher score first; equal scores (after rounding to 6 decimals) by expert name, ascending"


@dataclass(frozen=True)
class Strategy:
    name: str
    score: Callable[..., dict] | None
    fills: str                   # which ExpertScore field the score goes to (the report's ranking)
    needs: tuple = ()            # keyword inputs the score function requires
    description: str = ""
    # A strategy made of others (e.g. "combined") runs the whole selection itself:
    # ``run(target, experts, *, k, weighting, temperature, threads, embedder, **inputs) -> SelectionReport``.
    run: Callable[..., "SelectionReport"] | None = None


STRATEGIES: dict[str, Strategy] = {}


def register(name: str, *, fills: str, needs: tuple = (), description: str = ""):
    """Decorator: register ``fn(experts, **inputs) -> {name: score}`` as strategy ``name``."""
    _check_fills(name, fills)
    def wrap(fn):
        _add(Strategy(name, fn, fills, tuple(needs), description or (fn.__doc__ or "").strip()))
        return fn
    return wrap


def register_composite(name: str, *, fills: str, description: str = ""):
    """Decorator: register ``run(target, experts, **options) -> SelectionReport``, a strategy that
    combines others, as strategy ``name`` (``select_experts`` hands it the whole selection)."""
    _check_fills(name, fills)
    def wrap(run):
        _add(Strategy(name, None, fills, (), description or (run.__doc__ or "").strip(), run=run))
        return run
    return wrap


def _check_fills(name: str, fills: str) -> None:
    if fills not in SCORE_FIELDS:
        raise ValueError(f"strategy {name!r}: fills must be one of {SCORE_FIELDS}, got {fills!r}")


def _add(strategy: Strategy) -> None:
    if strategy.name in STRATEGIES:
        raise ValueError(f"selection strategy {strategy.name!r} registered twice")
    STRATEGIES[strategy.name] = strategy


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UserError(f"unknown selection strategy {name!r}; choose one of: "
                        f"{', '.join(sorted(STRATEGIES))}") from None


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


# --- the report ----------------------------------------------------------------------

@dataclass
class ExpertScore:
    name: str
    similarity: float | None = None
    performance: float | None = None   # None until a performance strategy has scored it
    rank: int = 0                      # 1 = best by the report's ranking score
    selected: bool = False
    weight: float = 0.0                # final merge weight; 0 for experts not selected


@dataclass
class SelectionReport:
    strategy: str
    ranked_by: str                     # "similarity" or "performance"
    k: int
    weighting: dict                    # {"name", "temperature"?, "rule"}: how weights came from scores
    experts: list = field(default_factory=list)   # ExpertScore, in rank order
    tie_rule: str = TIE_RULE
    embedder: str | None = None        # fingerprint of the embedder behind the similarity scores
    notes: list = field(default_factory=list)     # documented fallbacks taken (e.g. few target texts)

    def selected_names(self) -> list[str]:
        """Selected experts, best first."""
        return [e.name for e in self.experts if e.selected]

    def weight_of(self, name: str) -> float:
        for e in self.experts:
            if e.name == name:
                return e.weight
        raise UserError(f"expert {name!r} is not in this selection report")

    def to_dict(self) -> dict:
        """JSON-able (for bundle.json)."""
        out = asdict(self)
        out["selected"] = self.selected_names()
        return out

    def table(self) -> str:
        """A printable table, one line per expert, in rank order."""
        rows = [("rank", "expert", "similarity", "performance", "selected", "weight")]
        for e in self.experts:
            rows.append((str(e.rank), e.name, _fmt(e.similarity), _fmt(e.performance),
                         "yes" if e.selected else "", f"{e.weight:.3f}" if e.selected else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in
                           enumerate(zip(row, widths))).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"selection: {self.strategy}, top {self.k} by {self.ranked_by}; "
                     f"weights: {self.weighting['rule']}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --- running a strategy --------------------------------------------------------------

def ranking(scores: Mapping[str, float]) -> list[str]:
    """All names, best first, under :data:`TIE_RULE` (scores are already rounded by the strategy)."""
    return sorted(scores, key=lambda name: (-scores[name], name))


AUTO_K_MAX = 5
# With k="auto", experts scoring at least this share of the best score are merged: each added
# expert brings its own false positives, so a weak one can cost more than it adds. Not yet the
# default: its rows in BENCHMARKS.md "Build defaults" (dev) are still to run.
AUTO_K_RATIO = 0.8
AUTO_K_MAX_SHORTLIST = 3  # combined selection scores 2 x this many candidates when k is "auto"


def top_k(scores: Mapping[str, float], k, ratio: float = AUTO_K_RATIO) -> list[str]:
    """The k best names under :data:`TIE_RULE`; k larger than the library keeps them all.

    ``k="auto"`` keeps every expert within ``ratio`` of the best score (1 to AUTO_K_MAX of them),
    so a target where one expert stands out gets that one, and one where several do well gets
    several."""
    if not scores:
        raise UserError("the expert library is empty: there is nothing to select")
    ranked = ranking(scores)
    if k == AUTO_K:
        best = scores[ranked[0]]
        return [n for n in ranked[:AUTO_K_MAX] if best > 0 and scores[n] >= ratio * best] or ranked[:1]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"k must be a whole number >= 1 or {AUTO_K!r}, got {k!r}")
    return ranked[:k]


def select_with(strategy: str, experts: Mapping[str, Mapping], k: int, *,
                weighting: str = weighting_mod.DEFAULT_WEIGHTING,
                temperature: float = weighting_mod.DEFAULT_TEMPERATURE, **inputs) -> SelectionReport:
    """Score every expert with ``strategy``, keep the top ``k``, weight them; the full report."""
    chosen = get_strategy(strategy)
    if chosen.score is None:
        raise UserError(f"selection strategy {strategy!r} combines others: run it with select_experts")
    missing = [n for n in chosen.needs if inputs.get(n) is None]
    if missing:
        raise UserError(f"selection strategy {strategy!r} needs {', '.join(missing)}")
    if not experts:
        raise UserError("the expert library is empty: there is nothing to select")
    rule = weighting_mod.describe(weighting, temperature)  # validates before any expensive scoring
    scores = chosen.score(experts, **inputs)
    keep = top_k(scores, k)
    weights = weighting_mod.weights(weighting, [scores[n] for n in keep], temperature)
    weight_of = dict(zip(keep, weights))
    rows = [ExpertScore(name, rank=i, selected=name in weight_of, weight=weight_of.get(name, 0.0),
                        **{chosen.fills: scores[name]})
            for i, name in enumerate(ranking(scores), start=1)]
    return SelectionReport(strategy=strategy, ranked_by=chosen.fills, k=len(keep),
                           weighting=rule, experts=rows)
