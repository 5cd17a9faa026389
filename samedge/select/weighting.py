"""Merge weights from the selected experts' scores: pure functions, each summing to 1.

Default: ``uniform`` over the k selected experts: the scores choose the experts, and
each selected expert gets weight 1/k. Chosen on dev data, not test
(``python benchmarks/accuracy.py tune``: F1 on 32 dev instances of each of the 7
protocol-P targets, similarity selection, k=3, TIES): uniform 4.4, normalized 4.1,
softmax T=0.2 3.6, softmax T=0.05 3.1. With the provisional 30-step experts these
differences are small; a sharp softmax (T=0.05: a similarity gap of 0.1 is a weight
ratio of e^2 = 7.4) lets one weak expert dominate and TIES then trims half of it.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..config import build_default
from ..errors import UserError

DEFAULT_WEIGHTING = build_default("weighting")
DEFAULT_TEMPERATURE = build_default("temperature")


def softmax(scores: Sequence[float], temperature: float = DEFAULT_TEMPERATURE) -> list[float]:
    """``w_i = exp(s_i / T) / sum_j exp(s_j / T)``; shifted by the max, so no overflow."""
    _check_scores(scores)
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise UserError(f"softmax temperature must be a positive number, got {temperature!r}")
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = math.fsum(exps)
    return [e / total for e in exps]


def normalized(scores: Sequence[float], temperature: float | None = None) -> list[float]:
    """``w_i = max(s_i, 0) / sum_j max(s_j, 0)``; uniform when no score is positive.

    Negative cosines mean "unrelated", so they get weight 0 rather than a
    negative merge weight.
    """
    _check_scores(scores)
    clipped = [max(float(s), 0.0) for s in scores]
    total = math.fsum(clipped)
    if total == 0.0:
        return uniform(scores)
    return [c / total for c in clipped]


def uniform(scores: Sequence[float], temperature: float | None = None) -> list[float]:
    """``w_i = 1 / k``."""
    _check_scores(scores)
    return [1.0 / len(scores)] * len(scores)


WEIGHTINGS = {"softmax": softmax, "normalized": normalized, "uniform": uniform}
RULES = {"softmax": "w_i = exp(s_i/T) / sum_j exp(s_j/T) over the selected experts",
         "normalized": "w_i = max(s_i,0) / sum_j max(s_j,0) over the selected experts (uniform if all <= 0)",
         "uniform": "w_i = 1/k over the selected experts"}


def weights(name: str, scores: Sequence[float], temperature: float = DEFAULT_TEMPERATURE) -> list[float]:
    """Weights by the named rule (see :data:`WEIGHTINGS`)."""
    return _get(name)(list(scores), temperature)


def describe(name: str, temperature: float = DEFAULT_TEMPERATURE) -> dict:
    """The rule as data for the selection report: name, formula and (softmax only) temperature."""
    _get(name)
    if name == "softmax":
        softmax([0.0], temperature)  # validates the temperature
        return {"name": name, "temperature": temperature, "rule": f"{RULES[name]}, T={temperature:g}"}
    return {"name": name, "rule": RULES[name]}


def _get(name: str):
    try:
        return WEIGHTINGS[name]
    except KeyError:
        raise UserError(f"unknown weighting {name!r}; choose one of: {', '.join(sorted(WEIGHTINGS))}") from None


def _check_scores(scores: Sequence[float]) -> None:
    if len(scores) == 0:
        raise UserError("no selected experts to weight")
    if not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
        raise UserError(f"scores must be finite numbers, got {list(scores)!r}")
