"""Training LoRA experts: examples (what a step sees), the recipe (how labels are shown),
checkpoints, and the trainer (PEFT, resumable, data parallel under ``accelerate launch``).

Needs the ``train`` extra (torch, transformers, peft, accelerate), imported only when training runs.
``from samedge.train import train`` is the public path (README "Python API").
"""

from .examples import Source, catalog_source, file_source
from .trainer import load_config, parse_overrides, train

__all__ = ["Source", "catalog_source", "file_source", "load_config", "parse_overrides", "train"]
