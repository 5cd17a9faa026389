"""Running candidate experts for performance selection: each expert's adapter as a runtime LoRA
(converted to GGUF once, cached by its sha256) over one shared Q8_0 copy of the base, on llama.cpp.

The performance strategy takes a runner as an input (``runner=``), so a build, a benchmark or a
test chooses what runs the experts and how long predictions are remembered.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..merge.lora import ADAPTER


def lora_gguf(expert, base_gguf: Path) -> Path:
    """The expert's adapter as a GGUF LoRA, converted once and cached by the adapter's sha256."""
    from ..files import samedge_home
    from ..merge.lora import convert_lora

    digest = expert.manifest["files"][ADAPTER]
    dest = samedge_home() / "lora" / f"{digest[:32]}.gguf"
    if not dest.is_file():
        convert_lora(expert.path, dest, base_gguf)
    return dest


def scoring_base(base) -> Path:
    """A Q8_0 copy of the base for scoring candidates (faster than f16; cached beside it)."""
    from ..converters.quantize import quantize

    dest = base.root / "base.q8_0.gguf"
    if not dest.is_file():
        quantize(base.gguf, dest, "q8_0")
    return dest


class ExpertRunner:
    """Runs candidate experts on documents, each as a runtime LoRA over one shared, cached Q8_0 base.

    It remembers the predictions it made, keyed by (adapter sha256, labels, documents), so the
    callers that score the same candidates on the same sample (several selection strategies,
    --ensemble, benchmarks) decode each expert once by sharing one runner. Decoding is greedy
    and deterministic, so reuse is exact. Tests inject a runner of their own."""

    def __init__(self, remember: int = 256):
        self.remember = remember
        self._made: dict[tuple, list[dict]] = {}

    @staticmethod
    def _key(expert, labels, docs: list[dict]) -> tuple:
        sha = expert.manifest["files"].get(ADAPTER, str(expert.path))
        return (sha, tuple((lab.name, lab.description, lab.tag) for lab in labels),
                tuple((d["id"], d["text"]) for d in docs))

    def __call__(self, experts: dict, labels, docs: list[dict], base, threads=None,
                 progress=True) -> dict[str, list[dict]]:
        """Each expert's predictions on ``docs``, as runtime LoRAs on one loaded base. ``labels`` is one
        label list for all, or a function of the expert's name (each expert asked under its own names)."""
        labels_of = labels if callable(labels) else (lambda name: labels)
        from tqdm.auto import tqdm

        from ..extract.engines.llama import LlamaEngine
        from ..extract.extractor import Extractor

        keys = {name: self._key(experts[name]["expert"], labels_of(name), docs) for name in experts}
        out = {name: copy.deepcopy(self._made[key]) for name, key in keys.items() if key in self._made}
        todo = sorted(set(experts) - set(out))
        if not todo:
            return out
        engine = LlamaEngine(scoring_base(base), threads=threads)
        try:
            for name in tqdm(todo, desc="score experts", unit="expert", disable=not progress):
                engine.set_adapter(lora_gguf(experts[name]["expert"], base.gguf))
                out[name] = Extractor(engine, labels_of(name)).extract_many([d["text"] for d in docs],
                                                                            ids=[d["id"] for d in docs])
                if len(self._made) < self.remember:
                    self._made[keys[name]] = copy.deepcopy(out[name])
            return out
        finally:
            engine.close()


def run_experts(experts: dict, labels, docs: list[dict], base, threads=None, progress=True) -> dict[str, list[dict]]:
    """One-off predictions (see :class:`ExpertRunner`); share a runner to reuse them across calls."""
    return ExpertRunner()(experts, labels, docs, base, threads=threads, progress=progress)
