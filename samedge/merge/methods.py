"""Merge methods as pure numpy functions over the experts' deltas for one tensor.

- ``linear``: task arithmetic, Σ w_i ΔW_i.
- ``ties``: trim each delta to its top ``density`` fraction by magnitude, elect
  a sign per element from the weighted sum, and average (weighted) the deltas
  that agree with it (Yadav et al., 2023).
- ``dare_linear`` / ``dare_ties``: drop each element with probability
  ``drop_rate`` and rescale the rest by 1 / (1 - drop_rate) (Yu et al., 2024),
  then combine linearly or with TIES' sign election. The mask comes from a
  generator seeded by (seed, tensor, expert), so a merge is bit-identical
  across runs and independent of tensor order.
"""

from __future__ import annotations

import zlib

import numpy as np

from .registry import Param, register

_density = Param(float, 0.5, lambda v: 0.0 < v <= 1.0, "0 < density <= 1")
_drop = Param(float, 0.5, lambda v: 0.0 <= v < 1.0, "0 <= drop_rate < 1")
_seed = Param(int, 0, lambda v: v >= 0, "seed >= 0")
_scale = Param(float, 1.0, lambda v: 0.0 < v <= 10.0, "0 < scale <= 10")


def weighted_sum(deltas, weights) -> np.ndarray:
    out = np.zeros_like(deltas[0], dtype=np.float32)
    for d, w in zip(deltas, weights):
        out += np.float32(w) * d
    return out


def trim(delta: np.ndarray, density: float) -> np.ndarray:
    """Keep the ``density`` fraction of entries with the largest magnitude (ties kept), zero the rest."""
    if density >= 1.0:
        return delta
    k = int(np.ceil(density * delta.size))
    if k <= 0:
        return np.zeros_like(delta)
    threshold = np.partition(np.abs(delta).ravel(), delta.size - k)[delta.size - k]
    return np.where(np.abs(delta) >= threshold, delta, np.float32(0))


def dare(delta: np.ndarray, drop_rate: float, rng: np.random.Generator) -> np.ndarray:
    if drop_rate == 0.0:
        return delta
    keep = rng.random(delta.shape) >= drop_rate
    return np.where(keep, delta / np.float32(1.0 - drop_rate), np.float32(0)).astype(np.float32)


def sign_consensus(deltas, weights) -> np.ndarray:
    """TIES' disjoint merge: per element, the weighted mean of the deltas whose sign matches
    the sign of the weighted sum; elements where nobody agrees stay zero."""
    weighted = [np.float32(w) * d for d, w in zip(deltas, weights)]
    elected = np.sign(sum(weighted))
    merged = np.zeros_like(deltas[0], dtype=np.float32)
    divisor = np.zeros_like(deltas[0], dtype=np.float32)
    for wd, w in zip(weighted, weights):
        agree = (np.sign(wd) == elected) & (wd != 0)
        merged += np.where(agree, wd, np.float32(0))
        divisor += np.where(agree, np.float32(abs(w)), np.float32(0))
    return np.where(divisor > 0, merged / np.where(divisor > 0, divisor, 1), np.float32(0)).astype(np.float32)


def _rng(seed: int, seed_key: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(seed_key.encode()), index])


@register("linear", "task arithmetic: sum of weighted deltas")
def linear(deltas, weights, seed_key=""):
    return weighted_sum(deltas, weights)


@register("ties", "trim to top density, elect sign, disjoint weighted mean, times scale",
          density=_density, scale=_scale)
def ties(deltas, weights, seed_key="", *, density, scale):
    return np.float32(scale) * sign_consensus([trim(d, density) for d in deltas], weights)


@register("dare_linear", "random drop and rescale (seeded), then sum of weighted deltas",
          drop_rate=_drop, seed=_seed)
def dare_linear(deltas, weights, seed_key="", *, drop_rate, seed):
    return weighted_sum([dare(d, drop_rate, _rng(seed, seed_key, i)) for i, d in enumerate(deltas)], weights)


@register("dare_ties", "random drop and rescale (seeded), then TIES sign election, times scale",
          drop_rate=_drop, seed=_seed, scale=_scale)
def dare_ties(deltas, weights, seed_key="", *, drop_rate, seed, scale):
    dropped = [dare(d, drop_rate, _rng(seed, seed_key, i)) for i, d in enumerate(deltas)]
    return np.float32(scale) * sign_consensus(dropped, weights)
