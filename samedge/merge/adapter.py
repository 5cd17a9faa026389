"""Adapter-space outputs: the merge as a LoRA, so one quantized base serves many targets.

- ``cat``: the exact weighted sum at rank Σ r_i. B = [B_1 … B_k],
  A = [w_1 s_1 A_1; …; w_k s_k A_k], so B·A = Σ w_i s_i B_i A_i (linear only).
- ``svd``: any method's merged delta, truncated to rank r by SVD, with the
  relative Frobenius error of the truncation reported per tensor.

Both are written as a PEFT adapter folder (scale 1: alpha = r), which
converters.lora_to_gguf turns into a GGUF LoRA.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import MergeError
from ..files import atomic_dir, atomic_path
from .deltas import check_compatible
from .gguf_merge import merged_deltas


def _write_peft(dest: Path, tensors: dict[str, np.ndarray], rank: int, target_modules: list[str], force: bool) -> None:
    from safetensors.numpy import save_file

    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank,
              "target_modules": sorted(target_modules), "bias": "none", "lora_dropout": 0.0,
              "fan_in_fan_out": False, "base_model_name_or_path": None}
    with atomic_dir(dest, overwrite=force) as tmp:
        with atomic_path(tmp / "adapter_model.safetensors") as t:
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(tensors.items())}, str(t))
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _key(module: str, which: str) -> str:
    return f"base_model.model.{module}.lora_{which}.weight"


def cat_adapter(experts, weights, base_id: str, dest, force: bool = False) -> dict:
    pairs = check_compatible(experts, base_id)
    tensors, modules = {}, sorted(pairs[0])
    for module in modules:
        tensors[_key(module, "A")] = np.concatenate(
            [np.float32(w * e.scale) * p[module][0] for p, e, w in zip(pairs, experts, weights)], axis=0)
        tensors[_key(module, "B")] = np.concatenate([p[module][1] for p in pairs], axis=1)
    rank = tensors[_key(modules[0], "A")].shape[0]
    _write_peft(Path(dest), tensors, rank, sorted({m.rsplit(".", 1)[-1] for m in modules}), force)
    return {"rank": rank, "exact": True}


def svd_adapter(experts, weights, base_id: str, dest, rank: int, method: str = "linear",
                params: dict | None = None, force: bool = False) -> dict:
    if rank < 1:
        raise MergeError(f"svd rank must be >= 1, got {rank}")
    modules, params = merged_deltas(experts, weights, method, params, base_id)
    tensors, errors = {}, {}
    for module, merged in modules.items():
        d = merged().astype(np.float64)
        u, s, vt = np.linalg.svd(d, full_matrices=False)
        r = min(rank, len(s))
        root = np.sqrt(s[:r])
        tensors[_key(module, "B")] = (u[:, :r] * root).astype(np.float32)
        tensors[_key(module, "A")] = (root[:, None] * vt[:r]).astype(np.float32)
        total = float(np.sqrt((s ** 2).sum()))
        errors[module] = float(np.sqrt((s[r:] ** 2).sum()) / total) if total > 0 else 0.0
    _write_peft(Path(dest), tensors, rank, sorted({m.rsplit(".", 1)[-1] for m in modules}), force)
    return {"rank": rank, "method": method, "params": params,
            "relative_error_max": max(errors.values()), "relative_error_mean": float(np.mean(list(errors.values()))),
            "relative_error": errors}


def truncate_lora(a: np.ndarray, b: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The best rank-``rank`` factors of ``b @ a`` (Eckart-Young), and the relative Frobenius error.

    Computed on the factors (QR of each, then an r x r SVD), never on the dense matrix, so it
    is exact and takes milliseconds for a 135M model's modules. The singular values are split
    evenly between the two factors, as in ``svd_adapter``."""
    qb, rb = np.linalg.qr(b.astype(np.float64))
    qa, ra = np.linalg.qr(a.astype(np.float64).T)
    u, s, vt = np.linalg.svd(rb @ ra.T)
    r = min(rank, len(s))
    root = np.sqrt(s[:r])
    new_b = (qb @ u[:, :r]) * root
    new_a = (root[:, None] * vt[:r]) @ qa.T
    total = float(np.sqrt((s ** 2).sum()))
    error = float(np.sqrt((s[r:] ** 2).sum()) / total) if total > 0 else 0.0
    return new_a.astype(np.float32), new_b.astype(np.float32), error


def shrink_expert(expert, rank: int, dest, dtype: str = "float16", force: bool = False) -> dict:
    """``expert`` at LoRA rank ``rank``: the truncated adapter and an updated manifest, written
    atomically to ``dest``. The scale alpha/r is folded into the factors (alpha = rank: scale 1),
    so the merge and the runtime LoRA see the same delta. Returns the new manifest."""
    from safetensors.numpy import save_file

    from ..files import atomic_write_json, hash_files
    from ..library import ADAPTER, ADAPTER_CONFIG, MANIFEST

    if rank < 1:
        raise MergeError(f"rank must be >= 1, got {rank}")
    tensors = expert.tensors()
    out, errors = {}, {}
    for key in sorted(k for k in tensors if ".lora_A." in k):
        b_key = key.replace(".lora_A.", ".lora_B.")
        a, b, errors[key.split(".lora_A.")[0]] = truncate_lora(np.float32(expert.scale) * tensors[key],
                                                                tensors[b_key], rank)
        out[key], out[b_key] = a.astype(dtype), b.astype(dtype)
    config = json.loads((expert.path / ADAPTER_CONFIG).read_text())
    config.update(r=rank, lora_alpha=rank, use_rslora=False, rank_pattern={}, alpha_pattern={})
    manifest = json.loads(json.dumps(expert.manifest))
    manifest["lora"].update(r=rank, alpha=rank, dtype=dtype)
    manifest["lora"]["truncated_from"] = {"r": expert.manifest["lora"]["r"], "alpha": expert.manifest["lora"]["alpha"],
                                          "adapter_sha256": expert.manifest["files"][ADAPTER],
                                          "relative_error_max": round(max(errors.values()), 4),
                                          "relative_error_mean": round(float(np.mean(list(errors.values()))), 4)}
    with atomic_dir(Path(dest), overwrite=force) as tmp:
        with atomic_path(tmp / ADAPTER) as t:
            save_file(out, str(t), metadata={"format": "pt"})
        atomic_write_json(tmp / ADAPTER_CONFIG, config)
        manifest["files"] = hash_files(tmp, [ADAPTER, ADAPTER_CONFIG])
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest
