"""HF -> GGUF and LoRA -> GGUF: llama.cpp must compute what transformers computes.

Tiny random models make the checks fast; their weights are re-drawn with a
large scale so that greedy decoding wanders through the vocabulary (the
default init repeats one token, which would hide a wrong q/k permutation).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

from samedge.converters.gguf_io import read_tensor, write_gguf_like  # noqa: E402
from samedge.converters.hf_to_gguf import convert, detect_pre, main  # noqa: E402
from samedge.merge.lora import convert_lora  # noqa: E402
from samedge.errors import UserError  # noqa: E402

# One thread for torch and llama.cpp: on a busy 2-core machine (a training job
# beside the tests) two spinning threads each made SmolLM2 decoding 10-30x slower.
torch.set_num_threads(1)

PROMPTS = ["The quick brown fox", "Named entities: Barack Obama visited Paris.",
           "<|im_start|>user\nList three colors.<|im_end|>\n<|im_start|>assistant\n"]
STEPS = 32
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --- helpers ----------------------------------------------------------------------

def randomize(model, seed: int = 1) -> None:
    """Weights with unit-scale activations: distinct greedy tokens, rotary matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                scale = 1.0 if "embed" in name else 2.0
                p.copy_(torch.randn(p.shape, generator=g) * scale / p.shape[1] ** 0.5)
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:  # norms
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))


def hf_greedy(model, ids: list[int], steps: int = STEPS) -> list[int]:
    """Plain argmax decoding (generate() would add logits processors such as min_length)."""
    import inspect

    # transformers 5.x renamed past_key_values to cache
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out, past, inp = [], None, torch.tensor([ids])
    with torch.no_grad():
        for _ in range(steps):
            res = model(input_ids=inp, use_cache=True, **{cache_arg: past})
            past = getattr(res, cache_arg)
            out.append(int(res.logits[0, -1].argmax()))
            inp = torch.tensor([[out[-1]]])
    return out


def last_logits(llm) -> np.ndarray:
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def llama_greedy(llm, ids: list[int], steps: int = STEPS) -> list[int]:
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(steps):
        out.append(int(np.argmax(last_logits(llm))))
        llm.eval([out[-1]])
    return out


def load_llama(path, threads: int = 1, **kw):
    # f32 KV cache: the default f16 cache alone moves logits by ~1e-2, enough to flip near-ties.
    return llama_cpp.Llama(str(path), n_ctx=256, verbose=False, logits_all=False, n_threads=threads,
                           n_threads_batch=threads, type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
                           **kw)


def assert_same_model(model, llm, tokenizer) -> None:
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        assert llama_greedy(llm, ids) == hf_greedy(model, ids), prompt
        with torch.no_grad():
            want = model(torch.tensor([ids])).logits[0, -1].numpy()
        llm.reset()
        llm.eval(ids)
        np.testing.assert_allclose(last_logits(llm), want, atol=2e-3)


def open_reader(path):
    import gguf

    return gguf.GGUFReader(path)  # ~2 s for SmolLM2's vocabulary: open each file once


def gguf_fields(reader) -> dict:
    return {name: field.contents() for name, field in reader.fields.items()
            if name not in _BIG_FIELDS}


_BIG_FIELDS = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}


# --- fixtures ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(hf_dir, gguf f32 path, model, tokenizer) for a tiny random llama."""
    from tests.tiny_models import make_tiny_llama

    root = tmp_path_factory.mktemp("tiny")
    model, tokenizer = make_tiny_llama()
    randomize(model)
    model.save_pretrained(root / "hf", safe_serialization=True)
    tokenizer.save_pretrained(root / "hf")
    gguf_path = convert(root / "hf", root / "tiny-f32.gguf", out_type="f32")
    return root / "hf", gguf_path, model, tokenizer


@pytest.fixture(scope="module")
def tiny_reader(tiny):
    return open_reader(tiny[1])


@pytest.fixture(scope="module")
def tiny_llm(tiny):
    return load_llama(tiny[1])


# --- HF -> GGUF -------------------------------------------------------------------

def test_tiny_llama_greedy_tokens_match_transformers(tiny, tiny_llm):
    _, _, model, tokenizer = tiny
    assert_same_model(model, tiny_llm, tokenizer)


@pytest.mark.parametrize("text", [
    "Barack Obama visited Paris in 2019, paying $3.50.",
    "  leading spaces,\ttabs\n\nand newlines ",
    "café naïve 東京 🙂 don't won't",
    "<|im_start|>user\nHi there<|im_end|>\n",
])
def test_embedded_tokenizer_matches_hf(tiny, tiny_llm, text):
    tokenizer = tiny[3]
    assert tiny_llm.tokenize(text.encode(), add_bos=False, special=True) == \
        tokenizer.encode(text, add_special_tokens=False)


def test_metadata_and_layout(tiny, tiny_reader):
    import gguf

    hf_dir, path, model, tokenizer = tiny
    fields = gguf_fields(tiny_reader)
    cfg = model.config
    assert fields["general.architecture"] == "llama"
    assert fields["llama.block_count"] == cfg.num_hidden_layers
    assert fields["llama.embedding_length"] == cfg.hidden_size
    assert fields["llama.attention.head_count_kv"] == cfg.num_key_value_heads
    assert fields["llama.rope.dimension_count"] == cfg.hidden_size // cfg.num_attention_heads
    assert fields["llama.vocab_size"] == len(tokenizer)
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "smollm"
    assert fields["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert "<|im_start|>" in fields["tokenizer.chat_template"]
    assert fields["general.file_type"] == gguf.LlamaFileType.ALL_F32
    names = {t.name: t for t in tiny_reader.tensors}
    assert "output.weight" not in names  # tied embeddings: llama.cpp reuses token_embd
    assert names["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32


def test_f16_and_q8_0_outputs_are_deterministic_and_load(tiny, tmp_path):
    import gguf

    hf_dir, _, _, tokenizer = tiny
    for out_type, weight_type in (("f16", gguf.GGMLQuantizationType.F16), ("q8_0", gguf.GGMLQuantizationType.Q8_0)):
        a = convert(hf_dir, tmp_path / f"a-{out_type}.gguf", out_type=out_type)
        b = convert(hf_dir, tmp_path / f"b-{out_type}.gguf", out_type=out_type)
        assert a.read_bytes() == b.read_bytes()
        types = {t.name: t.tensor_type for t in open_reader(a).tensors}
        assert types["blk.0.attn_q.weight"] == weight_type
        assert types["output_norm.weight"] == gguf.GGMLQuantizationType.F32
        llm = load_llama(a)
        ids = tokenizer.encode(PROMPTS[0], add_special_tokens=False)
        assert len(llama_greedy(llm, ids, steps=4)) == 4
    assert not list(tmp_path.glob("*.incomplete"))


def test_qwen2_with_attention_biases_matches_transformers(tiny, tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = tiny[3]
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, rope_theta=1e6)
    model = Qwen2ForCausalLM(cfg).eval()
    randomize(model, seed=3)
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    llm = load_llama(convert(tmp_path / "hf", tmp_path / "qwen.gguf", out_type="f32"))
    assert_same_model(model, llm, tokenizer)


def test_refusals(tiny, tmp_path):
    hf_dir = tiny[0]
    pickled = tmp_path / "pickled"
    shutil.copytree(hf_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(UserError, match="pickle"):
        convert(pickled, tmp_path / "x.gguf")

    other = tmp_path / "gpt2"
    shutil.copytree(hf_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["architectures"] = ["GPT2LMHeadModel"]
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="not supported"):
        convert(other, tmp_path / "x.gguf")

    with pytest.raises(UserError, match="valid: f32, f16, q8_0"):
        convert(hf_dir, tmp_path / "x.gguf", out_type="q4_k")
    assert not (tmp_path / "x.gguf").exists()


def test_pre_tokenizer_detection():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    digits = {"type": "Digits", "individual_digits": True}
    assert detect_pre({"pre_tokenizer": byte_level}, ["a", "b"]) == "gpt-2"
    assert detect_pre({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [digits, byte_level]}}, ["a"]) == "smollm"
    # transformers' GGUF round trip drops the Digits step: the vocabulary still says SmolLM
    smollm_vocab = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "a"]
    assert detect_pre({"pre_tokenizer": byte_level}, smollm_vocab) == "smollm"
    with pytest.raises(UserError, match="pre="):
        detect_pre({"pre_tokenizer": {"type": "Metaspace"}}, ["a"])


def test_safetensors_reader_widens_bf16_exactly(tmp_path):
    from safetensors.torch import save_file

    from samedge.converters.gguf_io import read_safetensors

    values = torch.randn(3, 5)
    save_file({"a": values.to(torch.bfloat16), "b": values.half(), "c": values}, str(tmp_path / "t.safetensors"))
    read = read_safetensors(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(np.asarray(read["a"], dtype=np.float32), values.to(torch.bfloat16).float().numpy())
    np.testing.assert_array_equal(read["b"], values.half().numpy())
    np.testing.assert_array_equal(read["c"], values.numpy())
    assert read["a"].shape == (3, 5)


def test_cli_writes_the_same_file(tiny, tmp_path):
    hf_dir, f32 = tiny[0], tiny[1]
    assert main([str(hf_dir), str(tmp_path / "cli.gguf"), "--outtype", "f32"]) == 0
    assert (tmp_path / "cli.gguf").read_bytes() == f32.read_bytes()


# --- write_gguf_like (the merge path's writer) -----------------------------------

def test_write_gguf_like_replaces_tensors_deterministically(tiny_reader, tmp_path):
    import gguf

    src = tiny_reader
    name = "blk.1.attn_q.weight"
    new = read_tensor(src, name) + np.float32(0.25)
    a = write_gguf_like(src, tmp_path / "a.gguf", {name: new}, out_type="f32")
    b = write_gguf_like(src, tmp_path / "b.gguf", {name: lambda w: w + np.float32(0.25)}, out_type="f32")
    assert a.read_bytes() == b.read_bytes()
    out = open_reader(a)
    np.testing.assert_array_equal(read_tensor(out, name), new)
    np.testing.assert_array_equal(read_tensor(out, "blk.0.attn_q.weight"), read_tensor(src, "blk.0.attn_q.weight"))
    assert gguf_fields(out) == gguf_fields(src)  # every metadata field carried over

    # An unchanged copy at the source's own type is the source, byte for byte.
    same = write_gguf_like(src, tmp_path / "same.gguf", out_type="f32")
    assert same.read_bytes() == open(src.data.filename, "rb").read()

    f16 = open_reader(write_gguf_like(src, tmp_path / "f16.gguf", {name: new}, out_type="f16"))
    types = {t.name: t.tensor_type for t in f16.tensors}
    assert types[name] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.ffn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert gguf_fields(f16)["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16
    np.testing.assert_allclose(read_tensor(f16, name), new, atol=1e-2)


def test_write_gguf_like_refuses_bad_replacements(tiny_reader, tmp_path):
    src = tiny_reader
    name = "blk.0.attn_k.weight"
    shape = read_tensor(src, name).shape
    with pytest.raises(ValueError, match="not in the base"):
        write_gguf_like(src, tmp_path / "x.gguf", {"blk.9.attn_k.weight": np.zeros(shape, np.float32)})
    with pytest.raises(ValueError, match="shape"):
        write_gguf_like(src, tmp_path / "x.gguf", {name: np.zeros((shape[0] + 1, shape[1]), np.float32)})
    bad = np.zeros(shape, np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_gguf_like(src, tmp_path / "x.gguf", {name: bad})
    assert not list(tmp_path.iterdir())  # nothing partial left behind


# --- LoRA -> GGUF -----------------------------------------------------------------

def make_lora(hf_dir, out_dir, seed: int, **config):
    """A PEFT LoRA on all 7 linear modules with random nonzero A and B; returns the merged HF model.

    Sized so that ΔW is about half of W: a clear change that keeps logits tame.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(hf_dir).eval()
    peft_model = get_peft_model(model, LoraConfig(target_modules=LINEAR, lora_dropout=0.0, **config))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 / p.shape[1] ** 0.5)
    peft_model.save_pretrained(out_dir)
    return peft_model.merge_and_unload().eval()


@pytest.mark.parametrize("config", [
    dict(r=4, lora_alpha=8),
    # rsLoRA and per-module rank/alpha: scaling is folded into B
    dict(r=4, lora_alpha=8, use_rslora=True, rank_pattern={"down_proj": 2}, alpha_pattern={"q_proj": 16}),
], ids=["plain", "rslora-patterns"])
def test_runtime_lora_matches_merged_model(tiny, tiny_reader, tmp_path, config):
    hf_dir, base_gguf, _, tokenizer = tiny
    merged = make_lora(hf_dir, tmp_path / "adapter", seed=2, **config)
    lora = convert_lora(tmp_path / "adapter", tmp_path / "lora.gguf", base_gguf=tiny_reader)
    fields = gguf_fields(open_reader(lora))
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == config["lora_alpha"]

    llm = load_llama(base_gguf, lora_path=str(lora))
    assert_same_model(merged, llm, tokenizer)
    # ...and the adapter really changes the model.
    ids = tokenizer.encode(PROMPTS[0], add_special_tokens=False)
    assert llama_greedy(load_llama(base_gguf), ids) != llama_greedy(llm, ids)


def test_lora_refuses_a_different_base(tiny, tiny_reader, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_dir, base_gguf = tiny[0], tiny_reader
    cfg = LlamaConfig.from_pretrained(hf_dir)
    cfg.hidden_size, cfg.intermediate_size = 128, 256
    other = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=2, target_modules=LINEAR))
    other.save_pretrained(tmp_path / "adapter")
    with pytest.raises(UserError, match="different base"):
        convert_lora(tmp_path / "adapter", tmp_path / "lora.gguf", base_gguf=base_gguf)
    assert not (tmp_path / "lora.gguf").exists()

    (tmp_path / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(UserError, match="safetensors"):
        convert_lora(tmp_path / "adapter", tmp_path / "lora.gguf", base_gguf=base_gguf)


# --- the real base ----------------------------------------------------------------

@pytest.mark.real
def test_real_smollm2_greedy_tokens_match_transformers(tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from samedge.base import provision

    base = provision(hf=True)
    path = convert(base.hf, tmp_path / "smollm2-f32.gguf", out_type="f32")
    model = LlamaForCausalLM.from_pretrained(base.hf, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(base.hf)
    llm = load_llama(path)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "List three colors."}],
                                         tokenize=False, add_generation_prompt=True)
    for prompt in ["The capital of France is", chat, "def fibonacci(n):"]:
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        assert llama_greedy(llm, ids) == hf_greedy(model, ids), prompt
