"""Tiny experts for the merge/build tests: a 2-layer random llama base (HF + GGUF f32) and
LoRA adapters on it with random, non-zero B, written as real expert folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_tiny_base(root: Path, seed: int = 0):
    """(hf_dir, gguf_path, base_id) for a tiny random llama."""
    from samedge.converters.hf_to_gguf import convert
    from samedge.base import resolve_source
    from tests.tiny_models import make_tiny_llama

    hf_dir = root / "tiny_hf"
    make_tiny_llama(hf_dir, seed=seed)
    gguf = convert(hf_dir, root / "tiny.f32.gguf", out_type="f32")
    return hf_dir, Path(gguf), resolve_source(hf_dir).base_id


def make_tiny_expert(folder: Path, hf_dir: Path, base_id: str, *, name: str, seed: int, r: int = 4,
                     alpha: int = 8, modules=LINEAR, dtype: str = "float32") -> Path:
    """A PEFT LoRA on the tiny base with random A and B, plus a samedge expert manifest."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from samedge.data.labels import make_label
    from samedge.files import hash_files
    from samedge.train.trainer import save_adapter

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=list(modules), lora_dropout=0.0))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn_like(p) * 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    save_adapter(model, folder, dtype)
    manifest = {"format": "samedge-expert/1", "name": name, "domain": name, "description": f"tiny {name}",
                "labels": [make_label("person").to_dict()], "base": {"name": "tiny", "base_id": base_id},
                "lora": {"r": r, "alpha": alpha, "target_modules": list(modules), "dtype": dtype},
                "training": {}, "dev": {}, "centroid": None,
                "files": hash_files(folder, ["adapter_model.safetensors", "adapter_config.json"])}
    (folder / "expert.json").write_text(json.dumps(manifest, indent=2))
    return folder


def peft_merged_state(hf_dir: Path, adapter_dir: Path) -> dict[str, np.ndarray]:
    """PEFT's own merge_and_unload of one adapter at weight 1, as numpy (the reference)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return {k: v.detach().numpy().copy() for k, v in merged.state_dict().items()}
