"""Quantization through llama.cpp: every type loads and generates; failures leave nothing behind.

The tiny GGUF here is written with numpy and the ``gguf`` package only (no
torch), with a byte-level vocabulary and rows of 256 so that the K-quant
kernels really run instead of falling back.
"""

from __future__ import annotations

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp")
gguf = pytest.importorskip("gguf")

from samedge.converters.gguf_io import planned, write_gguf  # noqa: E402
from samedge.converters.quantize import QUANT_TYPES, quantize  # noqa: E402
from samedge.errors import UserError  # noqa: E402

HIDDEN, FF, LAYERS, HEADS, KV_HEADS = 256, 512, 2, 4, 2
T = gguf.GGMLQuantizationType
# The type llama.cpp gives a 256-wide attn_q row under each file type.
EXPECTED_ATTN_Q = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_k_m": T.Q4_K, "q5_k_m": T.Q5_K, "f16": T.F16}


def byte_level_alphabet() -> list[str]:
    """GPT-2's byte -> printable character table (the tokens of a byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_tiny_gguf(path) -> None:
    alphabet = byte_level_alphabet()
    merges = ["Ġ t", "h e", "Ġt he"]
    tokens = ["<|endoftext|>", *alphabet, "Ġt", "he", "Ġthe"]
    rng = np.random.default_rng(0)

    def weight(rows, cols):
        return lambda: rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)

    plan = [planned("token_embd.weight", (len(tokens), HIDDEN), "f32", weight(len(tokens), HIDDEN))]
    head_dim = HIDDEN // HEADS
    for i in range(LAYERS):
        for stem, shape in (("attn_q", (HIDDEN, HIDDEN)), ("attn_k", (KV_HEADS * head_dim, HIDDEN)),
                            ("attn_v", (KV_HEADS * head_dim, HIDDEN)), ("attn_output", (HIDDEN, HIDDEN)),
                            ("ffn_gate", (FF, HIDDEN)), ("ffn_up", (FF, HIDDEN)), ("ffn_down", (HIDDEN, FF))):
            plan.append(planned(f"blk.{i}.{stem}.weight", shape, "f32", weight(*shape)))
        for stem in ("attn_norm", "ffn_norm"):
            plan.append(planned(f"blk.{i}.{stem}.weight", (HIDDEN,), "f32", lambda: np.ones(HIDDEN, np.float32)))
    plan.append(planned("output_norm.weight", (HIDDEN,), "f32", lambda: np.ones(HIDDEN, np.float32)))

    def metadata(w) -> None:
        w.add_type("model")
        w.add_context_length(256)
        w.add_embedding_length(HIDDEN)
        w.add_block_count(LAYERS)
        w.add_feed_forward_length(FF)
        w.add_head_count(HEADS)
        w.add_head_count_kv(KV_HEADS)
        w.add_rope_freq_base(10000.0)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_dimension_count(head_dim)
        w.add_vocab_size(len(tokens))
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tokens)
        w.add_token_types([gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(tokens) - 1))
        w.add_token_merges(merges)
        w.add_bos_token_id(0)
        w.add_eos_token_id(0)
        w.add_add_bos_token(False)

    write_gguf(path, "llama", metadata, plan)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("quant") / "tiny-f32.gguf"
    write_tiny_gguf(path)
    return path


def generate(path, n: int = 8) -> bytes:
    """Greedy tokens from the model at ``path``, detokenized (EOS is not special-cased)."""
    llm = llama_cpp.Llama(str(path), n_ctx=128, verbose=False, n_threads=1, n_threads_batch=1)
    ids = llm.tokenize(b"the cat sat on the mat", add_bos=False)
    out = []
    llm.eval(ids)
    for _ in range(n):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        out.append(int(np.argmax(logits[1:])) + 1)  # skip EOS so that text always comes out
        llm.eval([out[-1]])
    return llm.detokenize(out)


@pytest.mark.parametrize("qtype", list(QUANT_TYPES))
def test_every_type_loads_and_generates(tiny_gguf, tmp_path, qtype):
    dest = quantize(tiny_gguf, tmp_path / f"tiny-{qtype}.gguf", qtype.upper(), threads=1)
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(dest).tensors}
    assert types["blk.0.attn_q.weight"] == EXPECTED_ATTN_Q[qtype]
    assert types["blk.0.attn_norm.weight"] == T.F32
    assert len(generate(dest)) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_unknown_type_is_a_clear_error(tiny_gguf, tmp_path):
    with pytest.raises(UserError) as err:
        quantize(tiny_gguf, tmp_path / "out.gguf", "q3_xl")
    message = str(err.value)
    assert "q3_xl" in message and all(name in message for name in QUANT_TYPES)
    assert not list(tmp_path.iterdir())


def test_failed_quantization_leaves_no_partial_file(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(60))
    dest = tmp_path / "out.gguf"
    dest.write_bytes(b"previous model")
    with pytest.raises(UserError, match="could not quantize"):
        quantize(broken, dest, "q8_0")
    assert dest.read_bytes() == b"previous model"  # the old file survives untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.gguf", "out.gguf"]

    with pytest.raises(UserError, match="no such GGUF"):
        quantize(tmp_path / "missing.gguf", dest, "q8_0")


def test_destination_appears_only_when_complete(tiny_gguf, tmp_path, monkeypatch):
    dest = tmp_path / "out.gguf"
    seen = {}
    real = llama_cpp.llama_model_quantize

    def spy(src, out, params):
        seen["out"] = out.decode()
        seen["dest_existed"] = dest.exists()
        return real(src, out, params)

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", spy)
    quantize(tiny_gguf, dest, "q8_0", threads=1)
    assert seen["out"].endswith(".incomplete") and not seen["dest_existed"]
    assert dest.is_file() and not list(tmp_path.glob("*.incomplete"))


def teacher_forced_argmax(path, ids: list[int]) -> np.ndarray:
    """The model's next-token choice at every position of ``ids``."""
    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False, n_threads=1, n_threads_batch=1, logits_all=True)
    llm.eval(ids)
    return np.argmax(llm.scores[:len(ids)], axis=1)


@pytest.mark.real
def test_real_base_quantizes_and_keeps_its_answers(tmp_path):
    """Q8_0 and Q4_K_M of SmolLM2 answer, and agree with f16 on most next tokens.

    Not all: this 135M model has near-ties (f16 opens "The capital..." by
    0.08 logits over "L'..."), which any quantization may flip.
    """
    from samedge.base import provision

    base = provision()
    f16 = llama_cpp.Llama(str(base.gguf), n_ctx=256, verbose=False, n_threads=1, n_threads_batch=1)
    prompt = f16.tokenize(b"<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n",
                          add_bos=False, special=True)
    reply = []
    for token in f16.generate(prompt, temp=0.0, top_k=1):
        if token == f16.token_eos() or len(reply) == 32:
            break
        reply.append(token)
    assert b"Red" in f16.detokenize(reply)
    reference = teacher_forced_argmax(base.gguf, prompt + reply)

    for qtype, min_agreement in (("q8_0", 0.95), ("q4_k_m", 0.8)):
        dest = quantize(base.gguf, tmp_path / f"base-{qtype}.gguf", qtype, threads=1)
        assert dest.stat().st_size < base.gguf.stat().st_size / 1.5
        agreement = np.mean(teacher_forced_argmax(dest, prompt + reply) == reference)
        assert agreement >= min_agreement, (qtype, agreement)
