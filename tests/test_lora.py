"""samedge.merge.lora: one scaling rule for the merge and for the runtime LoRA that selection scores with."""

from __future__ import annotations

import numpy as np
import pytest

from samedge.converters.gguf_io import field_value, open_gguf, read_tensor
from samedge.converters.llama_layout import permute_qk, qk_heads
from samedge.errors import IntegrityError, UserError
from samedge.files import atomic_write_json, hash_files
from samedge.library.experts import EXPERT_FORMAT, MANIFEST, load_expert
from samedge.merge import merged_deltas
from samedge.merge.lora import (ADAPTER, ADAPTER_CONFIG, LoraConfig, convert_lora, lora_module, pair_tensors, parse_key,
                                peft_key, write_peft)
from tests.bundle_fixtures import make_numpy_tiny_bundle

BASE_ID = "0" * 64
HIDDEN, HEADS, KV_HEADS = 32, 4, 2  # make_numpy_tiny_bundle's llama
MODULES = {"model.layers.0.self_attn.q_proj": (HIDDEN, HIDDEN), "model.layers.0.self_attn.v_proj": (16, HIDDEN),
           "model.layers.1.mlp.down_proj": (HIDDEN, 2 * HIDDEN)}


def write_expert_folder(folder, config: dict, seed: int = 0):
    """A library expert written with numpy only: random A/B for ``MODULES`` at the config's ranks."""
    rng = np.random.default_rng(seed)
    lora = LoraConfig(r=config["r"], alpha=config["lora_alpha"], rank_pattern=config.get("rank_pattern"))
    tensors = {}
    for module, (out_f, in_f) in MODULES.items():
        r = lora.rank(module)
        tensors[peft_key(module, "A")] = rng.normal(0, 0.2, (r, in_f)).astype(np.float32)
        tensors[peft_key(module, "B")] = rng.normal(0, 0.2, (out_f, r)).astype(np.float32)
    folder.mkdir(parents=True)
    write_peft(folder, tensors, {"peft_type": "LORA", "bias": "none", **config})
    atomic_write_json(folder / MANIFEST, {
        "format": EXPERT_FORMAT, "name": folder.name, "domain": "test", "labels": [], "centroid": None,
        "base": {"base_id": BASE_ID}, "lora": {"r": config["r"], "alpha": config["lora_alpha"]},
        "files": hash_files(folder, [ADAPTER, ADAPTER_CONFIG])})
    return load_expert(folder)


def runtime_delta(reader, module: str) -> np.ndarray:
    """What llama.cpp adds to the weight for a GGUF LoRA at lora_scale 1: alpha / rank · B · A (GGUF rows)."""
    from samedge.converters.llama_layout import hf_to_gguf_name

    name = hf_to_gguf_name(module + ".weight")
    a, b = read_tensor(reader, f"{name}.lora_a"), read_tensor(reader, f"{name}.lora_b")
    alpha = float(field_value(reader, "adapter.lora.alpha"))
    return np.float32(alpha / a.shape[0]) * (b @ a)


def in_gguf_rows(module: str, delta: np.ndarray) -> np.ndarray:
    heads = qk_heads({"q_proj": "attn_q", "k_proj": "attn_k"}.get(module.rsplit(".", 1)[-1], ""), HEADS, KV_HEADS)
    return permute_qk(delta, heads) if heads else delta


@pytest.fixture(scope="module")
def base_gguf(tmp_path_factory):
    return make_numpy_tiny_bundle(tmp_path_factory.mktemp("base")) / "model.gguf"


@pytest.mark.parametrize("config", [
    {"r": 4, "lora_alpha": 8, "use_rslora": True},
    {"r": 4, "lora_alpha": 8, "use_rslora": True, "rank_pattern": {"v_proj": 2}, "alpha_pattern": {"down_proj": 3}},
    {"r": 4, "lora_alpha": 8},
], ids=["rslora", "rslora+patterns", "plain"])
def test_selection_runtime_scale_equals_the_merge_scale(base_gguf, tmp_path, config):
    expert = write_expert_folder(tmp_path / "expert", config)
    deltas, _ = merged_deltas([expert], [1.0], "linear", None, BASE_ID)
    # The runtime LoRA exactly as performance selection makes it (select.runner.lora_gguf).
    reader = open_gguf(convert_lora(expert.path, tmp_path / "lora.gguf", base_gguf))
    for module in MODULES:
        merged = in_gguf_rows(module, deltas[module]())
        np.testing.assert_allclose(runtime_delta(reader, module), merged, rtol=1e-5, atol=1e-6)
    if config.get("use_rslora"):  # the case the old alpha / r merge got wrong
        module = "model.layers.1.mlp.down_proj"
        a, b = pair_tensors(expert.tensors())[module]
        assert not np.allclose(deltas[module](), np.float32(8 / 4) * (b @ a))


def test_scaling_rules():
    assert LoraConfig(r=16, alpha=32).scaling("x.q_proj") == 2.0
    assert LoraConfig(r=16, alpha=32, use_rslora=True).scaling("x.q_proj") == 8.0
    patterned = LoraConfig(r=16, alpha=32, rank_pattern={"q_proj": 4}, alpha_pattern={"v_proj": 4})
    assert (patterned.rank("m.q_proj"), patterned.scaling("m.q_proj"), patterned.scaling("m.v_proj")) == (4, 8.0, 0.25)


def test_one_key_parser():
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert parse_key(key) == ("model.layers.0.self_attn.q_proj", "A") == lora_module(key)
    assert peft_key(*parse_key(key)) == key
    assert parse_key("model.embed_tokens.lora_embedding_A") is None
    with pytest.raises(IntegrityError, match="only LoRA A/B weights"):
        lora_module("model.embed_tokens.lora_embedding_A")
    with pytest.raises(UserError, match="A without B"):
        pair_tensors({key: np.zeros((1, 1))})
