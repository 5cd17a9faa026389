"""The merge-method registry: each method is a pure function over per-tensor deltas plus a
validated parameter schema (in the manner of mergekit's ``merge_methods``).

A method receives, for one weight matrix, the experts' exact deltas
``ΔW_i = (alpha_i / r_i) · B_i · A_i`` (float32, HF layout), their weights,
its parameters and a ``seed_key`` (stable per tensor, for seeded methods),
and returns the merged delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import MergeError


@dataclass(frozen=True)
class Param:
    type: type
    default: object
    check: Callable[[object], bool] = lambda v: True
    rule: str = ""


@dataclass(frozen=True)
class MergeMethod:
    name: str
    fn: Callable
    params: dict = field(default_factory=dict)
    description: str = ""

    def validate(self, given: dict | None) -> dict:
        """Defaults filled in; unknown names, wrong types and out-of-range values refused."""
        given = dict(given or {})
        unknown = set(given) - set(self.params)
        if unknown:
            raise MergeError(f"merge method {self.name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                             f"it takes: {', '.join(sorted(self.params)) or 'none'}")
        out = {}
        for name, spec in self.params.items():
            value = given.get(name, spec.default)
            if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, spec.type) or isinstance(value, bool) and spec.type is not bool:
                raise MergeError(f"{self.name}: {name} must be {spec.type.__name__}, got {value!r}")
            if not spec.check(value):
                raise MergeError(f"{self.name}: {name}={value!r} is out of range ({spec.rule})")
            out[name] = value
        return out


METHODS: dict[str, MergeMethod] = {}


def register(name: str, description: str, **params: Param):
    def wrap(fn):
        if name in METHODS:
            raise ValueError(f"merge method {name!r} registered twice")
        METHODS[name] = MergeMethod(name, fn, params, description)
        return fn
    return wrap


def get_method(name: str) -> MergeMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise MergeError(f"unknown merge method {name!r}; choose one of: {', '.join(sorted(METHODS))}") from None


def method_names() -> list[str]:
    return sorted(METHODS)
