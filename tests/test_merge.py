"""Merge exactness: the registry's methods, the numpy-over-GGUF path, the HF path, PEFT, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from samedge.converters.gguf_io import open_gguf, read_tensor  # noqa: E402
from samedge.converters.llama_layout import hf_to_gguf_name, unpermute_qk  # noqa: E402
from samedge.errors import MergeError  # noqa: E402
from samedge.library import load_expert  # noqa: E402
from samedge.merge import cat_adapter, get_method, merge_into_gguf, merge_into_hf, svd_adapter  # noqa: E402
from samedge.merge.methods import sign_consensus, trim  # noqa: E402
from tests.tiny_experts import make_tiny_base, make_tiny_expert, peft_merged_state  # noqa: E402

N_HEAD, N_KV = 4, 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    hf_dir, gguf, base_id = make_tiny_base(root)
    experts = [load_expert(make_tiny_expert(root / f"e{i}", hf_dir, base_id, name=f"e{i}", seed=i + 1))
               for i in range(3)]
    return {"root": root, "hf": hf_dir, "gguf": gguf, "base_id": base_id, "experts": experts}


def _hf_layout(reader, module: str) -> np.ndarray:
    """A merged GGUF tensor back in HF row order (``reader``: opened once; parsing the vocabulary is slow)."""
    name = hf_to_gguf_name(module + ".weight")
    values = read_tensor(reader, name)
    stem = name.split(".")[-2]
    return unpermute_qk(values, N_HEAD) if stem == "attn_q" else unpermute_qk(values, N_KV) if stem == "attn_k" else values


def test_linear_one_expert_equals_peft_merge_and_unload(tiny, tmp_path):
    expert = tiny["experts"][0]
    reference = peft_merged_state(tiny["hf"], expert.path)
    out = tmp_path / "hf_merged"
    merge_into_hf(tiny["hf"], tiny["base_id"], [expert], [1.0], "linear", out)
    from safetensors.numpy import load_file
    ours = load_file(out / "model.safetensors")
    adapted = [k for k in ours if any(m in k for m in ("q_proj", "k_proj", "v_proj", "o_proj", "_proj"))]
    assert adapted
    for key in adapted:
        assert np.abs(ours[key] - reference[key]).max() <= 1e-5, key
    # And the GGUF path (numpy, q/k permuted) gives the same tensors.
    gguf_out = tmp_path / "merged.gguf"
    merge_into_gguf(tiny["gguf"], tiny["base_id"], [expert], [1.0], "linear", gguf_out, out_type="f32")
    reader = open_gguf(gguf_out)
    for key in adapted:
        module = key.removesuffix(".weight")
        assert np.abs(_hf_layout(reader, module) - reference[key]).max() <= 1e-5, key


@pytest.mark.parametrize("method,params", [("linear", {}), ("ties", {"density": 0.4}),
                                           ("dare_ties", {"drop_rate": 0.3, "seed": 7})])
def test_gguf_and_hf_paths_agree_to_f16_precision(tiny, tmp_path, method, params):
    experts, weights = tiny["experts"], [0.5, 0.3, 0.2]
    merge_into_gguf(tiny["gguf"], tiny["base_id"], experts, weights, method, tmp_path / "m.gguf", params=params,
                    out_type="f16")
    merge_into_hf(tiny["hf"], tiny["base_id"], experts, weights, method, tmp_path / "hf", params=params)
    from safetensors.numpy import load_file
    hf = load_file(tmp_path / "hf" / "model.safetensors")
    reader = open_gguf(tmp_path / "m.gguf")
    for module in ("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.down_proj"):
        a, b = _hf_layout(reader, module), hf[module + ".weight"]
        assert np.allclose(a, b, atol=2e-3, rtol=1e-3), module
        assert np.abs(a - b.astype(np.float16).astype(np.float32)).max() <= 1e-3


def test_merge_is_deterministic_and_byte_identical(tiny, tmp_path):
    args = (tiny["gguf"], tiny["base_id"], tiny["experts"], [0.6, 0.4, 0.0], "dare_ties")
    merge_into_gguf(*args, tmp_path / "a.gguf", params={"drop_rate": 0.5, "seed": 3})
    merge_into_gguf(*args, tmp_path / "b.gguf", params={"drop_rate": 0.5, "seed": 3})
    merge_into_gguf(*args, tmp_path / "c.gguf", params={"drop_rate": 0.5, "seed": 4})
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()
    assert (tmp_path / "a.gguf").read_bytes() != (tmp_path / "c.gguf").read_bytes()


def test_ties_matches_a_hand_computed_reference():
    d1 = np.array([[0.9, -0.1, 0.5, 0.0]], dtype=np.float32)
    d2 = np.array([[-0.3, -0.8, 0.2, 0.4]], dtype=np.float32)
    # density 0.5 keeps the 2 largest magnitudes of each: d1 -> [0.9, 0, 0.5, 0], d2 -> [0, -0.8, 0, 0.4]
    assert np.array_equal(trim(d1, 0.5), np.array([[0.9, 0, 0.5, 0]], dtype=np.float32))
    # weights 1, 1: elected signs +, -, +, +; each element has one agreeing delta -> mean of that one
    merged = get_method("ties").fn([d1, d2], [1.0, 1.0], density=0.5, scale=1.0)
    assert np.allclose(merged, [[0.9, -0.8, 0.5, 0.4]])
    # disagreement: 0.9 vs -0.3 with weights 1, 1 -> sign +, only d1 agrees
    both = sign_consensus([np.array([0.9], np.float32), np.array([-0.3], np.float32)], [1.0, 1.0])
    assert np.allclose(both, [0.9])
    # weighted mean of agreeing values: (0.5*0.4 + 0.25*0.2) / (0.5+0.25)
    agree = sign_consensus([np.array([0.4], np.float32), np.array([0.2], np.float32)], [0.5, 0.25])
    assert np.allclose(agree, [(0.5 * 0.4 + 0.25 * 0.2) / 0.75])


def test_dare_is_bit_identical_across_runs_and_rescales():
    rng = np.random.default_rng(0)
    deltas = [rng.standard_normal((16, 8)).astype(np.float32) for _ in range(2)]
    m = get_method("dare_linear")
    a = m.fn(deltas, [1.0, 0.0], seed_key="x", drop_rate=0.5, seed=1)
    b = m.fn(deltas, [1.0, 0.0], seed_key="x", drop_rate=0.5, seed=1)
    assert a.tobytes() == b.tobytes()
    kept = a != 0
    assert 0.3 < kept.mean() < 0.7
    assert np.allclose(a[kept], 2 * deltas[0][kept])


def test_cat_is_exact_and_svd_reports_its_error(tiny, tmp_path):
    from samedge.merge.lora import read_adapter
    from samedge.merge import merged_deltas

    experts, weights = tiny["experts"][:2], [0.7, 0.3]
    info = cat_adapter(experts, weights, tiny["base_id"], tmp_path / "cat")
    assert info["rank"] == 8
    tensors = read_adapter(tmp_path / "cat" / "adapter_model.safetensors")
    modules, _ = merged_deltas(experts, weights, "linear", {}, tiny["base_id"])
    module = "model.layers.0.mlp.up_proj"
    b = tensors[f"base_model.model.{module}.lora_B.weight"]
    a = tensors[f"base_model.model.{module}.lora_A.weight"]
    assert np.abs(b @ a - modules[module]()).max() <= 1e-6
    full = svd_adapter(experts, weights, tiny["base_id"], tmp_path / "svd8", rank=8)
    assert full["relative_error_max"] < 1e-5  # rank 8 holds a sum of two rank-4 deltas exactly
    low = svd_adapter(experts, weights, tiny["base_id"], tmp_path / "svd2", rank=2)
    assert 0.05 < low["relative_error_mean"] < 1.0


def test_truncate_lora_is_the_best_low_rank_approximation():
    from samedge.merge.adapter import truncate_lora

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(8, 40)), rng.normal(size=(30, 8))
    dense = b @ a
    same_a, same_b, err = truncate_lora(a, b, 8)
    assert err < 1e-6 and np.abs(same_b @ same_a - dense).max() < 1e-4
    low_a, low_b, err = truncate_lora(a, b, 3)
    u, s, vt = np.linalg.svd(dense)
    best = (u[:, :3] * s[:3]) @ vt[:3]
    assert low_a.shape == (3, 40) and low_b.shape == (30, 3)
    assert np.abs(low_b @ low_a - best).max() < 1e-4
    assert abs(err - np.sqrt((s[3:] ** 2).sum() / (s ** 2).sum())) < 1e-6


def test_a_shrunk_expert_loads_and_merges_to_the_truncated_delta(tiny, tmp_path):
    from samedge.merge import merged_deltas
    from samedge.merge.adapter import shrink_expert

    expert = tiny["experts"][0]
    manifest = shrink_expert(expert, 2, tmp_path / "small", dtype="float32")
    small = load_expert(tmp_path / "small")  # sha256 of the new files verified
    module = "model.layers.0.mlp.up_proj"
    assert small.manifest["lora"]["r"] == 2 and small.scaling(module) == 1.0 == manifest["lora"]["alpha"] / 2
    assert manifest["lora"]["truncated_from"]["r"] == expert.manifest["lora"]["r"]
    full, _ = merged_deltas([expert], [1.0], "linear", {}, tiny["base_id"])
    shrunk, _ = merged_deltas([small], [1.0], "linear", {}, tiny["base_id"])
    u, s, vt = np.linalg.svd(full[module]().astype(np.float64))
    assert np.abs(shrunk[module]() - (u[:, :2] * s[:2]) @ vt[:2]).max() < 1e-4


def test_refusals(tiny, tmp_path):
    experts = tiny["experts"]
    with pytest.raises(MergeError, match="no parameter"):
        merge_into_gguf(tiny["gguf"], tiny["base_id"], experts[:1], [1.0], "ties", tmp_path / "x.gguf",
                        params={"densty": 0.5})
    with pytest.raises(MergeError, match="out of range"):
        get_method("ties").validate({"density": 1.5})
    with pytest.raises(MergeError, match="unknown merge method"):
        get_method("average")
    with pytest.raises(MergeError, match="not .*base|different bases"):
        merge_into_gguf(tiny["gguf"], "0" * 64, experts[:1], [1.0], "linear", tmp_path / "x.gguf")
    # An expert adapting fewer modules: refused, never a silent partial merge.
    partial = load_expert(make_tiny_expert(tmp_path / "partial", tiny["hf"], tiny["base_id"], name="partial",
                                           seed=9, modules=["q_proj", "v_proj"]))
    with pytest.raises(MergeError, match="adapt different modules"):
        merge_into_gguf(tiny["gguf"], tiny["base_id"], [experts[0], partial], [0.5, 0.5], "linear", tmp_path / "x.gguf")
    # NaN in an adapter.
    from safetensors.numpy import load_file, save_file
    from samedge.files import hash_files
    bad = make_tiny_expert(tmp_path / "nan", tiny["hf"], tiny["base_id"], name="nan", seed=5)
    tensors = load_file(bad / "adapter_model.safetensors")
    key = sorted(tensors)[0]
    tensors[key][0, 0] = np.nan
    save_file(tensors, bad / "adapter_model.safetensors")
    manifest = json.loads((bad / "expert.json").read_text())
    manifest["files"] = hash_files(bad, ["adapter_model.safetensors", "adapter_config.json"])
    (bad / "expert.json").write_text(json.dumps(manifest))
    with pytest.raises(MergeError, match="NaN"):
        merge_into_gguf(tiny["gguf"], tiny["base_id"], [load_expert(bad)], [1.0], "linear", tmp_path / "x.gguf")
    assert not list(tmp_path.glob("x.gguf*")), "a refused merge must leave no file behind"
