"""The torch/HF merge path, for GPU hosts: base HF folder + merged deltas -> HF folder.

The deltas come from the same pure functions as the GGUF path (HF layout, no
q/k permutation), so both paths give the same tensors to f16 precision.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..files import atomic_dir
from .gguf_merge import merged_deltas


def merge_into_hf(hf_dir: str | Path, base_id: str, experts, weights, method: str, dest: str | Path,
                  params: dict | None = None, force: bool = False) -> dict:
    import torch
    from safetensors.torch import load_file, save_file

    modules, params = merged_deltas(experts, weights, method, params, base_id)
    hf_dir = Path(hf_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with atomic_dir(dest, overwrite=force) as tmp:
        for item in hf_dir.iterdir():
            if item.is_file() and item.suffix != ".safetensors":
                shutil.copyfile(item, tmp / item.name)
        for shard in sorted(hf_dir.glob("*.safetensors")):
            tensors = load_file(shard, device=device)
            for module, merged in modules.items():
                key = module + ".weight"
                if key in tensors:
                    w = tensors[key]
                    tensors[key] = (w.float() + torch.from_numpy(merged()).to(device)).to(w.dtype)
            save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, tmp / shard.name, metadata={"format": "pt"})
    return params
