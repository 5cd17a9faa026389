"""Adapter-space outputs: the merge as a LoRA, so one quantized base serves many targets.

- ``cat``: the exact weighted sum at rank Σ r_i. B = [B_1 … B_k],
  A = [w_1 s_1 A_1; …; w_k s_k A_k], so B·A = Σ w_i s_i B_i A_i (linear only).
- ``svd``: any method's merged delta, truncated to rank r by SVD, with the
  relative Frobenius error of the truncation reported per tensor.

Both are written as a PEFT adapter folder (scale 1: alpha = r), which
``merge.lora.convert_lora`` turns into a GGUF LoRA.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import MergeError
from ..files import atomic_dir
from .deltas import check_compatible, lora_pairs
from .gguf_merge import merged_deltas
from .lora import ADAPTER, ADAPTER_CONFIG, peft_key, unit_scale_config, write_peft


def _write_unit_scale(dest: Path, tensors: dict[str, np.ndarray], rank: int, modules, force: bool) -> None:
    target_modules = sorted({m.rsplit(".", 1)[-1] for m in modules})
    with atomic_dir(dest, overwrite=force) as tmp:
        write_peft(tmp, tensors, unit_scale_config(rank, target_modules))


def cat_adapter(experts, weights, base_id: str, dest, force: bool = False) -> dict:
    pairs = check_compatible(experts, base_id)
    tensors, modules = {}, sorted(pairs[0])
    for module in modules:
        tensors[peft_key(module, "A")] = np.concatenate(
            [np.float32(w * e.scaling(module)) * p[module][0] for p, e, w in zip(pairs, experts, weights)], axis=0)
        tensors[peft_key(module, "B")] = np.concatenate([p[module][1] for p in pairs], axis=1)
    rank = tensors[peft_key(modules[0], "A")].shape[0]
    _write_unit_scale(Path(dest), tensors, rank, modules, force)
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
        tensors[peft_key(module, "B")] = (u[:, :r] * root).astype(np.float32)
        tensors[peft_key(module, "A")] = (root[:, None] * vt[:r]).astype(np.float32)
        total = float(np.sqrt((s ** 2).sum()))
        errors[module] = float(np.sqrt((s[r:] ** 2).sum()) / total) if total > 0 else 0.0
    _write_unit_scale(Path(dest), tensors, rank, modules, force)
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
    atomically to ``dest``. The scaling is folded into the factors (alpha = rank: scale 1),
    so the merge and the runtime LoRA see the same delta. Returns the new manifest."""
    from ..files import atomic_write_json, hash_files
    from ..library.experts import MANIFEST

    if rank < 1:
        raise MergeError(f"rank must be >= 1, got {rank}")
    out, errors = {}, {}
    for module, (a, b) in sorted(lora_pairs(expert).items()):
        a, b, errors[module] = truncate_lora(np.float32(expert.scaling(module)) * a, b, rank)
        out[peft_key(module, "A")], out[peft_key(module, "B")] = a, b
    config = json.loads((expert.path / ADAPTER_CONFIG).read_text())
    config.update(r=rank, lora_alpha=rank, use_rslora=False, rank_pattern={}, alpha_pattern={})
    manifest = json.loads(json.dumps(expert.manifest))
    manifest["lora"].update(r=rank, alpha=rank, dtype=dtype)
    manifest["lora"]["truncated_from"] = {"r": expert.manifest["lora"]["r"], "alpha": expert.manifest["lora"]["alpha"],
                                          "adapter_sha256": expert.manifest["files"][ADAPTER],
                                          "relative_error_max": round(max(errors.values()), 4),
                                          "relative_error_mean": round(float(np.mean(list(errors.values()))), 4)}
    with atomic_dir(Path(dest), overwrite=force) as tmp:
        write_peft(tmp, out, config, dtype=dtype, metadata={"format": "pt"})
        manifest["files"] = hash_files(tmp, [ADAPTER, ADAPTER_CONFIG])
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest
