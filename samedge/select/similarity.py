"""Domain similarity: cosine between the target centroid and each expert's centroid.

Experts come as a plain mapping, independent of how the library stores them::

    {"conll2003": {"centroid": [0.01, ...], "embedder": "<sha256 of model.onnx>"}, ...}

Centroids are only comparable when the same embedder produced them, so an
expert whose ``embedder`` fingerprint differs from the target's is refused,
not silently scored. Scores are rounded to 6 decimals before ranking, so that
float noise (BLAS summation order, the 6-decimal centroids in manifests)
never decides a rank: ties then fall to the name (see ``registry.TIE_RULE``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError
from .registry import register

SCORE_DECIMALS = 6
RECOMMENDED_TARGET_TEXTS = 32   # below this the target centroid is noisy: the report says so
DEFAULT_TARGET_TEXTS = 256      # at most this many target texts (fixed-seed sample) make the centroid


def as_unit_vector(vector, what: str) -> np.ndarray:
    """``vector`` as float64, L2-normalised; refuses empty, non-1-D, non-finite or zero vectors."""
    if vector is None:
        raise UserError(f"{what} has no centroid (compute it with `samedge experts centroid NAME`)")
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise UserError(f"{what}: centroid must be a non-empty 1-D vector, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise UserError(f"{what}: centroid has NaN or infinite values")
    norm = np.linalg.norm(v)
    if norm == 0.0:
        raise UserError(f"{what}: centroid is the zero vector")
    return v / norm


def check_embedder(experts: Mapping[str, Mapping], embedder: str | None) -> str | None:
    """The one embedder fingerprint shared by the target and every expert; refuses a mix.

    With ``embedder`` None (the target's fingerprint unknown) the experts must agree with each other.
    """
    fingerprints = {name: e.get("embedder") for name, e in experts.items()}
    if embedder is None:
        groups = sorted({str(fp) for fp in fingerprints.values()})
        if len(groups) > 1:
            raise UserError("expert centroids come from different embedders (" + "; ".join(
                f"{g[:12]}: {', '.join(sorted(n for n, fp in fingerprints.items() if str(fp) == g))}"
                for g in groups) + "); recompute them with `samedge experts centroid NAME`")
        return next(iter(fingerprints.values()), None)
    wrong = sorted(name for name, fp in fingerprints.items() if fp != embedder)
    if wrong:
        shown = ", ".join(f"{n} ({str(fingerprints[n])[:12]})" for n in wrong[:5])
        raise UserError(f"centroids from a different embedder than the target's ({embedder[:12]}): {shown}"
                        f"{' ...' if len(wrong) > 5 else ''}; recompute them with `samedge experts centroid NAME`")
    return embedder


def cosine_scores(target_centroid: Sequence[float], experts: Mapping[str, Mapping],
                  embedder: str | None = None) -> dict[str, float]:
    """Cosine of the target centroid with each expert's, rounded to :data:`SCORE_DECIMALS`.

    ``embedder``: the target centroid's fingerprint; every expert must match it
    (None: the experts must at least agree with each other).
    """
    if not experts:
        raise UserError("the expert library is empty: there is nothing to select")
    check_embedder(experts, embedder)
    target = as_unit_vector(target_centroid, "the target")
    scores = {}
    for name in sorted(experts):
        vector = as_unit_vector(experts[name].get("centroid"), f"expert {name!r}")
        if vector.shape != target.shape:
            raise UserError(f"expert {name!r}: centroid has {vector.size} dimensions, the target's has {target.size}")
        scores[name] = round(float(np.clip(vector @ target, -1.0, 1.0)), SCORE_DECIMALS)
    return scores


def target_centroid(texts: Sequence[str], embedder, max_texts: int = DEFAULT_TARGET_TEXTS,
                    seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """The target's centroid with ``embedder`` (an ``samedge.embed.Embedder``) and notes for the report.

    Zero texts is an error. Fewer than :data:`RECOMMENDED_TARGET_TEXTS` is the
    documented fallback: the centroid is computed from what there is, and a
    note in the report says how few texts it rests on.
    """
    if isinstance(texts, str):
        raise UserError("expected a list of target texts, got a single string")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise UserError("the target has no (non-blank) sample texts: similarity selection needs at least one")
    notes = []
    if len(texts) < RECOMMENDED_TARGET_TEXTS:
        notes.append(f"target centroid from only {len(texts)} texts (recommended >= {RECOMMENDED_TARGET_TEXTS}); "
                     "similarity ranks may be unstable")
    return embedder.centroid(texts, max_texts=max_texts, seed=seed), notes


@register("similarity", fills="similarity", needs=("target_centroid",),
          description="cosine between the target centroid and each expert's domain centroid")
def similarity_strategy(experts: Mapping[str, Mapping], *, target_centroid, embedder: str | None = None,
                        **_ignored) -> dict[str, float]:
    return cosine_scores(target_centroid, experts, embedder)
