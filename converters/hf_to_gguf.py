"""HF llama-family folder (safetensors) -> GGUF, with tokenizer and chat template.

Written with the ``gguf`` package and numpy only (no torch, no pickle).
Supported: ``LlamaForCausalLM``, and ``MistralForCausalLM``/``Qwen2ForCausalLM``
where they are llama-shaped (Qwen2's q/k/v biases are written as llama
attention biases). Anything else is refused with a reason.

    python -m samedge.converters.hf_to_gguf HF_DIR OUT.gguf --outtype f16 [--pre smollm]
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samedge.errors import UserError

from .gguf_io import OUT_TYPES, file_type_for, planned, read_safetensors_dir, write_gguf
from .llama_layout import hf_to_gguf_name, permute_qk, qk_heads

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


# --- model hyperparameters ------------------------------------------------------

@dataclass(frozen=True)
class LlamaHparams:
    name: str
    context_length: int
    embedding_length: int
    block_count: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_freq_base: float
    rope_linear_factor: float | None
    rms_eps: float
    vocab_size: int
    tied_embeddings: bool


def _rope(cfg: dict) -> tuple[float, float | None]:
    """(rope theta, linear scaling factor or None). transformers 5 nests both in rope_parameters."""
    params = dict(cfg.get("rope_scaling") or {})
    params.update(cfg.get("rope_parameters") or {})
    theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return float(theta), None
    if kind == "linear":
        return float(theta), float(params["factor"])
    raise UserError(f"rope scaling {kind!r} is not supported by this converter (only default and linear)")


def read_hparams(hf_dir: Path) -> LlamaHparams:
    """Read and validate config.json; refuse anything not llama-shaped."""
    path = hf_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{hf_dir}: not an HF model folder (config.json missing)")
    cfg = json.loads(path.read_text(encoding="utf-8"))
    archs = cfg.get("architectures") or []
    if not archs or archs[0] not in SUPPORTED_ARCHITECTURES:
        raise UserError(f"{hf_dir}: architecture {archs} is not supported; "
                        f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    if cfg.get("mlp_bias"):
        raise UserError(f"{hf_dir}: MLP biases (mlp_bias=true) have no place in llama.cpp's llama graph")
    if cfg.get("hidden_act", "silu") != "silu":
        raise UserError(f"{hf_dir}: activation {cfg['hidden_act']!r} is not llama's silu")
    heads = int(cfg["num_attention_heads"])
    head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
    context = int(cfg.get("max_position_embeddings", 2048))
    # Sliding-window attention (Mistral v0.1, some Qwen2) is not modelled by the llama
    # graph: cap the context so that llama.cpp never runs past where outputs agree.
    window = cfg.get("sliding_window")
    if window and (cfg.get("use_sliding_window", True)) and int(window) < context:
        context = int(window)
    theta, linear = _rope(cfg)
    return LlamaHparams(
        name=cfg.get("_name_or_path") or hf_dir.name,
        context_length=context,
        embedding_length=int(cfg["hidden_size"]),
        block_count=int(cfg["num_hidden_layers"]),
        feed_forward_length=int(cfg["intermediate_size"]),
        head_count=heads,
        head_count_kv=int(cfg.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        rope_freq_base=theta,
        rope_linear_factor=linear,
        rms_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        vocab_size=int(cfg["vocab_size"]),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
    )


def add_hparams(writer, hp: LlamaHparams) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(Path(hp.name).name)
    writer.add_context_length(hp.context_length)
    writer.add_embedding_length(hp.embedding_length)
    writer.add_block_count(hp.block_count)
    writer.add_feed_forward_length(hp.feed_forward_length)
    writer.add_head_count(hp.head_count)
    writer.add_head_count_kv(hp.head_count_kv)
    writer.add_rope_freq_base(hp.rope_freq_base)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim * hp.head_count != hp.embedding_length:  # llama.cpp derives it otherwise
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    if hp.rope_linear_factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(hp.rope_linear_factor)
    writer.add_vocab_size(hp.vocab_size)


# --- tokenizer ------------------------------------------------------------------

@dataclass(frozen=True)
class TokenizerMeta:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int]        # bos/eos/unk/pad -> id
    add_bos: bool
    add_eos: bool
    chat_template: str | None


def _token_content(value) -> str | None:
    """tokenizer_config stores special tokens as a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value


# The StarCoder-family specials that open SmolLM's vocabulary. transformers' GGUF
# round trip drops the Digits pre-tokenizer, so the structure alone cannot tell.
_SMOLLM_FINGERPRINT = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>")


def detect_pre(tokenizer: dict, tokens: list[str]) -> str:
    """The ``tokenizer.ggml.pre`` name for a byte-level BPE tokenizer.json.

    By vocabulary fingerprint first, then by the pre-tokenizer's structure;
    anything unrecognised must be named by the caller (``pre=``), because a
    wrong guess tokenizes numbers and punctuation differently without error.
    """
    if tuple(tokens[:len(_SMOLLM_FINGERPRINT)]) == _SMOLLM_FINGERPRINT:
        return "smollm"
    pre = tokenizer.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"  # StarCoder/SmolLM: gpt2 regex plus one token per digit
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"  # llama.cpp's name for the GPT-2 regex
    if kinds and kinds[0] == "Split":
        pattern = (steps[0].get("pattern") or {}).get("Regex", "")
        if r"\p{N}{1,3}" in pattern:
            return "llama-bpe"
        if r"\p{N}" in pattern and r"[^\r\n\p{L}\p{N}]?\p{L}+" in pattern:
            return "qwen2"
    raise UserError(f"cannot tell the pre-tokenizer ({kinds}); pass pre= (e.g. --pre gpt-2) explicitly")


def _adds_special(tokenizer: dict, position: int) -> bool | None:
    """Whether the post-processor puts a special token first (0) or last (-1); None if unknown."""
    post = tokenizer.get("post_processor") or {}
    if post.get("type") != "TemplateProcessing":
        return None
    single = post.get("single") or []
    if not single:
        return False
    return "SpecialToken" in single[position]


def read_tokenizer(hf_dir: Path, vocab_size: int, pre: str | None = None) -> TokenizerMeta:
    import gguf

    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{hf_dir}: tokenizer.json missing (only fast byte-level BPE tokenizers are supported)")
    tok = json.loads(path.read_text(encoding="utf-8"))
    model = tok.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise UserError(f"{hf_dir}: tokenizer is {model.get('type')} (byte_fallback={model.get('byte_fallback')}); "
                        "only byte-level BPE (GPT-2 style) is supported")
    config_path = hf_dir / "tokenizer_config.json"
    tcfg = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}

    vocab: dict[str, int] = dict(model["vocab"])
    added = {a["content"]: a for a in tok.get("added_tokens", [])}
    for content, a in added.items():
        vocab[content] = a["id"]
    if max(vocab.values()) >= vocab_size:
        raise UserError(f"{hf_dir}: tokenizer has ids up to {max(vocab.values())} but vocab_size is {vocab_size}")
    by_id = {i: t for t, i in vocab.items()}

    T = gguf.TokenType
    tokens, types = [], []
    for i in range(vocab_size):  # embedding rows past the tokenizer are padding
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(T.UNUSED)
        elif text in added:
            tokens.append(text)
            types.append(T.CONTROL if added[text].get("special") else T.USER_DEFINED)
        else:
            tokens.append(text)
            types.append(T.NORMAL)

    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    model_cfg = _read_json(hf_dir / "config.json")
    special_ids = {}
    for kind in ("bos", "eos", "unk", "pad"):
        content = _token_content(tcfg.get(f"{kind}_token"))
        if content is not None and content in vocab:
            special_ids[kind] = vocab[content]
        elif isinstance(model_cfg.get(f"{kind}_token_id"), int):
            special_ids[kind] = model_cfg[f"{kind}_token_id"]

    add_bos = tcfg.get("add_bos_token")
    add_eos = tcfg.get("add_eos_token")
    if add_bos is None:
        add_bos = bool(_adds_special(tok, 0))
    if add_eos is None:
        add_eos = bool(_adds_special(tok, -1))

    return TokenizerMeta(tokens=tokens, token_types=[int(t) for t in types], merges=merges,
                         pre=pre or detect_pre(tok, tokens), special_ids=special_ids,
                         add_bos=bool(add_bos), add_eos=bool(add_eos),
                         chat_template=read_chat_template(hf_dir, tcfg))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_chat_template(hf_dir: Path, tcfg: dict) -> str | None:
    """chat_template.jinja (transformers 5) or tokenizer_config's chat_template (the default one)."""
    jinja = hf_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tcfg.get("chat_template")
    if isinstance(template, list):  # named templates: llama.cpp reads the default one
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default")
    return template


def add_tokenizer(writer, meta: TokenizerMeta) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(meta.pre)
    writer.add_token_list(meta.tokens)
    writer.add_token_types(meta.token_types)
    writer.add_token_merges(meta.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}
    for kind, token_id in meta.special_ids.items():
        adders[kind](token_id)
    writer.add_add_bos_token(meta.add_bos)
    writer.add_add_eos_token(meta.add_eos)
    writer.add_add_space_prefix(False)
    if meta.chat_template:
        writer.add_chat_template(meta.chat_template)


# --- tensors --------------------------------------------------------------------

# Buffers some checkpoints carry that are recomputed at load time.
_IGNORED = re.compile(r"\.rotary_emb\.inv_freq$")


def _tensor_order(gguf_name: str) -> tuple:
    """Embedding first, then layers in numeric order, then the head (stable, readable files)."""
    m = re.match(r"blk\.(\d+)\.", gguf_name)
    if m:
        return (1, int(m.group(1)), gguf_name)
    return (0 if gguf_name.startswith("token_embd") else 2, 0, gguf_name)


def plan_tensors(weights: dict[str, np.ndarray], hp: LlamaHparams, out_type: str):
    """HF tensors -> planned GGUF tensors: renamed, q/k rows permuted, ties dropped."""
    plan = []
    names = [n for n in weights if not _IGNORED.search(n)]
    if hp.tied_embeddings:
        names = [n for n in names if n != "lm_head.weight"]  # llama.cpp reuses token_embd
    elif "lm_head.weight" not in names:
        raise UserError("config says the embeddings are not tied, but lm_head.weight is missing")
    for hf_name in names:
        try:
            name = hf_to_gguf_name(hf_name)
        except KeyError:
            raise UserError(f"tensor {hf_name} has no llama GGUF equivalent; refusing a partial conversion") from None
        stem = name.split(".")[-2]
        heads = qk_heads(stem, hp.head_count, hp.head_count_kv)

        def values(array=weights[hf_name], heads=heads) -> np.ndarray:
            array = np.asarray(array, dtype=np.float32)
            return permute_qk(array, heads) if heads else array
        plan.append(planned(name, weights[hf_name].shape, out_type, values))
    return sorted(plan, key=lambda t: _tensor_order(t.name))


def _check_complete(plan, hp: LlamaHparams) -> None:
    have = {t.name for t in plan}
    need = {"token_embd.weight", "output_norm.weight"} | {
        f"blk.{i}.{stem}.weight" for i in range(hp.block_count)
        for stem in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                     "attn_norm", "ffn_norm")}
    missing = sorted(need - have)
    if missing:
        raise UserError(f"checkpoint is missing {len(missing)} tensors, e.g. {missing[:3]}")


def convert(hf_dir, dest, out_type: str = "f16", *, pre: str | None = None) -> Path:
    """Convert an HF llama-family folder to GGUF at ``out_type`` (f32, f16 or q8_0); atomic.

    ``pre`` overrides the detected ``tokenizer.ggml.pre`` (e.g. "smollm", "gpt-2", "llama-bpe", "qwen2").
    """
    if out_type not in OUT_TYPES:
        raise UserError(f"unknown out type {out_type!r}; valid: {', '.join(OUT_TYPES)}")
    hf_dir = Path(hf_dir)
    hp = read_hparams(hf_dir)
    tokenizer = read_tokenizer(hf_dir, hp.vocab_size, pre)
    try:
        weights = read_safetensors_dir(hf_dir)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    plan = plan_tensors(weights, hp, out_type)
    _check_complete(plan, hp)

    def add_metadata(writer) -> None:
        add_hparams(writer, hp)
        writer.add_file_type(file_type_for(out_type))
        writer.add_quantization_version(2)
        add_tokenizer(writer, tokenizer)

    return write_gguf(dest, "llama", add_metadata, plan)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samedge.converters.hf_to_gguf", description=__doc__.splitlines()[0])
    parser.add_argument("hf_dir")
    parser.add_argument("out")
    parser.add_argument("--outtype", default="f16", choices=OUT_TYPES)
    parser.add_argument("--pre", default=None, help="tokenizer.ggml.pre override (default: detected)")
    args = parser.parse_args(argv)
    try:
        path = convert(args.hf_dir, args.out, args.outtype, pre=args.pre)
    except UserError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
