"""LoRA adapters, the only place that knows their layout: PEFT tensor keys, PEFT's scaling
(``alpha / r``, rsLoRA's ``alpha / sqrt(r)``, per-module ``rank_pattern``/``alpha_pattern``),
PEFT adapter folders (read and written) and llama.cpp's GGUF LoRA (written).

The merge (exact deltas ``scaling(module) · B · A``) and the runtime LoRA that performance
selection scores with both take their scale from :meth:`LoraConfig.scaling`, so an expert
is scored and merged alike.

llama.cpp's LoRA format: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``; per adapted weight ``W`` (GGUF name ``blk.N.attn_q.weight``)
two tensors ``<name>.lora_a`` and ``<name>.lora_b``. In numpy layout they are
exactly PEFT's ``lora_A.weight`` [r, in] and ``lora_B.weight`` [out, r], and
llama.cpp computes ``W x + scale * alpha / r * B (A x)`` (scale is the runtime
``lora_scale``, 1.0 by default), which is PEFT's ``alpha / r`` scaling.
Since ΔW = B·A, llama.cpp's q/k row order is applied to the rows of B only.
Where PEFT's scaling is not ``alpha / r`` for a module (rsLoRA, patterns), the
difference is folded into B so that the adapter stays exact under llama.cpp's
single alpha.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..converters.gguf_io import field_value, open_gguf, planned, read_safetensors, tensor_shape, write_gguf
from ..converters.llama_layout import LINEAR_MODULES, hf_to_gguf_name, permute_qk, qk_heads

from ..errors import IntegrityError, UserError
from ..files import atomic_path, atomic_write_json, read_json

ADAPTER = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
LORA_OUT_TYPES = ("f32", "f16")

# base_model.model.<hf module path>.lora_A.weight (PEFT drops the adapter name when saving)
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>A|B)\.weight$")


# --- keys ------------------------------------------------------------------------

def parse_key(key: str) -> tuple[str, str] | None:
    """``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` -> (module path, 'A'|'B');
    None for a tensor that is not a plain LoRA A/B weight (callers say why in their own words)."""
    m = _PEFT_KEY.match(key)
    return (m.group("module"), m.group("which")) if m else None


def lora_module(key: str) -> tuple[str, str]:
    """:func:`parse_key` for a library expert's tensor: anything else is a damaged expert."""
    parsed = parse_key(key)
    if parsed is None:
        raise IntegrityError(f"unexpected adapter tensor {key!r} (only LoRA A/B weights are supported)")
    return parsed


def peft_key(module: str, which: str) -> str:
    return f"base_model.model.{module}.lora_{which}.weight"


def pair_tensors(tensors: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """PEFT tensors -> {hf module path: (A, B)}; refuses anything that is not a plain LoRA pair."""
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, array in tensors.items():
        parsed = parse_key(name)
        if parsed is None:
            raise UserError(f"adapter tensor {name} is not a LoRA A/B weight (embedding LoRA, DoRA, bias?)")
        module, which = parsed
        pairs.setdefault(module, {})[which] = array
    incomplete = sorted(k for k, v in pairs.items() if set(v) != {"A", "B"})
    if incomplete:
        raise UserError(f"adapter has A without B (or B without A) for {incomplete[:3]}")
    return {k: (v["A"], v["B"]) for k, v in pairs.items()}


# --- scaling ---------------------------------------------------------------------

@dataclass(frozen=True)
class LoraConfig:
    r: int
    alpha: float
    use_rslora: bool = False
    rank_pattern: dict | None = None
    alpha_pattern: dict | None = None
    base_model: str | None = None

    def rank(self, module: str) -> int:
        return _pattern_value(self.rank_pattern or {}, module, self.r)

    def scaling(self, module: str) -> float:
        """PEFT's scaling for one module (same rules as PEFT's LoraLayer)."""
        r = self.rank(module)
        alpha = _pattern_value(self.alpha_pattern or {}, module, self.alpha)
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r


def _pattern_value(pattern: dict, module: str, default):
    """PEFT matches pattern keys against the end of the module path."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


_REFUSED = {
    "use_dora": "DoRA adapters have a magnitude vector llama.cpp cannot apply",
    "fan_in_fan_out": "fan_in_fan_out (GPT-2 Conv1D) layout is not llama's",
    "modules_to_save": "modules_to_save holds full weights, not a LoRA; merge them instead",
    "lora_bias": "LoRA biases have no GGUF adapter form",
}


def read_lora_config(adapter_dir: Path) -> LoraConfig:
    """The PEFT adapter_config.json of a folder; refuses what neither the merge nor llama.cpp can apply."""
    adapter_dir = Path(adapter_dir)
    path = adapter_dir / ADAPTER_CONFIG
    if not path.is_file():
        raise UserError(f"{adapter_dir}: {ADAPTER_CONFIG} missing (not a PEFT adapter folder)")
    cfg = read_json(path)
    if cfg.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{adapter_dir}: peft_type {cfg.get('peft_type')!r} is not LORA")
    for key, why in _REFUSED.items():
        if cfg.get(key):
            raise UserError(f"{adapter_dir}: {key} is set: {why}")
    if cfg.get("bias", "none") != "none":
        raise UserError(f"{adapter_dir}: bias={cfg['bias']!r} trains biases, which a GGUF LoRA cannot carry")
    return LoraConfig(r=int(cfg["r"]), alpha=float(cfg["lora_alpha"]), use_rslora=bool(cfg.get("use_rslora")),
                      rank_pattern=dict(cfg.get("rank_pattern") or {}),
                      alpha_pattern=dict(cfg.get("alpha_pattern") or {}),
                      base_model=cfg.get("base_model_name_or_path"))


# --- PEFT folders ----------------------------------------------------------------

def read_adapter(path: Path) -> dict[str, np.ndarray]:
    """LoRA tensors as float32 numpy arrays (read with safetensors, never unpickled)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return {k: v.astype(np.float32) for k, v in load_file(path).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise IntegrityError(f"{path}: not a readable safetensors file ({e})") from None


def unit_scale_config(rank: int, target_modules) -> dict:
    """A PEFT config whose scaling is 1 (alpha = r): for adapters whose scale is folded into A."""
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank,
            "target_modules": sorted(target_modules), "bias": "none", "lora_dropout": 0.0,
            "fan_in_fan_out": False, "base_model_name_or_path": None}


def write_peft(folder: Path, tensors: dict[str, np.ndarray], config: dict, *, dtype: str = "float32",
               metadata: dict | None = None) -> None:
    """A PEFT adapter folder's two files, written into ``folder`` (an atomic_dir's staging folder)."""
    from safetensors.numpy import save_file

    with atomic_path(folder / ADAPTER) as t:
        save_file({k: np.ascontiguousarray(v, dtype=dtype) for k, v in sorted(tensors.items())}, str(t),
                  metadata=metadata)
    atomic_write_json(folder / ADAPTER_CONFIG, config)


# --- GGUF LoRA -------------------------------------------------------------------

@dataclass(frozen=True)
class BaseShape:
    """What the conversion needs from the base: head counts and tensor shapes (if known)."""
    n_head: int
    n_head_kv: int
    shapes: dict[str, tuple[int, ...]] | None  # GGUF name -> numpy shape


def base_shape(base_gguf, config: LoraConfig, adapter_dir: Path) -> BaseShape:
    """From the base GGUF (preferred: also checks shapes), else from a local HF base folder."""
    if base_gguf is not None:
        reader = open_gguf(base_gguf)
        arch = field_value(reader, "general.architecture")
        if arch != "llama":
            raise UserError(f"base GGUF architecture is {arch!r}; only llama is supported")
        return BaseShape(int(field_value(reader, "llama.attention.head_count")),
                         int(field_value(reader, "llama.attention.head_count_kv")),
                         {t.name: tensor_shape(t) for t in reader.tensors})
    hf_config = Path(config.base_model or "") / "config.json"
    if config.base_model and hf_config.is_file():
        cfg = json.loads(hf_config.read_text(encoding="utf-8"))
        heads = int(cfg["num_attention_heads"])
        return BaseShape(heads, int(cfg.get("num_key_value_heads") or heads), None)
    raise UserError(f"{adapter_dir}: pass base_gguf (the base model's GGUF) so that the q/k heads are known")


def _gguf_weight_name(module: str) -> str:
    if module.rsplit(".", 1)[-1] not in LINEAR_MODULES:
        raise UserError(f"LoRA on {module} is not supported (only {', '.join(LINEAR_MODULES)})")
    return hf_to_gguf_name(module + ".weight")


def convert_lora(adapter_dir, dest, base_gguf=None, *, out_type: str = "f32") -> Path:
    """Convert a PEFT LoRA folder to a GGUF LoRA adapter at ``dest`` (atomic).

    ``base_gguf``: the base model's GGUF (path or reader); gives the q/k head
    counts and lets every A/B shape be checked against its base weight.
    Returns ``dest``.
    """
    if out_type not in LORA_OUT_TYPES:
        raise UserError(f"unknown LoRA out type {out_type!r}; valid: {', '.join(LORA_OUT_TYPES)}")
    adapter_dir = Path(adapter_dir)
    config = read_lora_config(adapter_dir)
    weights_path = adapter_dir / ADAPTER
    if not weights_path.is_file():
        pickled = adapter_dir / "adapter_model.bin"
        hint = " (adapter_model.bin is pickle and is never loaded)" if pickled.is_file() else ""
        raise UserError(f"{adapter_dir}: {ADAPTER} missing{hint}")
    base = base_shape(base_gguf, config, adapter_dir)
    pairs = pair_tensors(read_safetensors(weights_path))
    if not pairs:
        raise UserError(f"{adapter_dir}: adapter has no LoRA tensors")

    plan = []
    for module in sorted(pairs, key=_module_order):
        a, b = pairs[module]
        name = _gguf_weight_name(module)
        _check_shapes(name, a, b, base)
        rank = a.shape[0]
        # llama.cpp scales by alpha / rank; fold in whatever PEFT does differently.
        fold = config.scaling(module) / (config.alpha / rank)
        heads = qk_heads(name.split(".")[-2], base.n_head, base.n_head_kv)

        def lora_b(b=b, fold=fold, heads=heads) -> np.ndarray:
            b = np.asarray(b, dtype=np.float32)
            if fold != 1.0:
                b = b * np.float32(fold)
            return permute_qk(b, heads) if heads else b
        plan.append(planned(f"{name}.lora_a", a.shape, out_type, lambda a=a: np.asarray(a, dtype=np.float32)))
        plan.append(planned(f"{name}.lora_b", b.shape, out_type, lora_b))

    def add_metadata(writer) -> None:
        import gguf

        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(adapter_dir.name)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, config.alpha)

    return write_gguf(dest, "llama", add_metadata, plan)


def _module_order(module: str) -> tuple:
    m = re.search(r"\.layers\.(\d+)\.", module)
    return (int(m.group(1)) if m else -1, module)


def _check_shapes(name: str, a: np.ndarray, b: np.ndarray, base: BaseShape) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
        raise UserError(f"{name}: LoRA A {a.shape} and B {b.shape} do not form a rank-r pair")
    if base.shapes is None:
        return
    if name not in base.shapes:
        raise UserError(f"{name}: the base GGUF has no such tensor (adapter from a different base?)")
    expected = base.shapes[name]
    if (b.shape[0], a.shape[1]) != expected:
        raise UserError(f"{name}: LoRA delta is {(b.shape[0], a.shape[1])} but the base weight is {expected} "
                        "(adapter from a different base?)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedge.merge.lora",
                                     description="PEFT LoRA adapter (safetensors) -> GGUF LoRA adapter that llama.cpp loads.")
    parser.add_argument("adapter_dir")
    parser.add_argument("out")
    parser.add_argument("--base", default=None, help="the base model's GGUF (checks shapes, gives head counts)")
    parser.add_argument("--outtype", default="f32", choices=LORA_OUT_TYPES)
    args = parser.parse_args(argv)
    try:
        path = convert_lora(args.adapter_dir, args.out, args.base, out_type=args.outtype)
    except UserError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
