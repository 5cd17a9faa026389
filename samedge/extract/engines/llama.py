"""The llama.cpp engine: batched greedy decoding with a shared, cached prompt prefix.

Single-stream decode of a 135M model is already near this machine's memory
bandwidth, so the speed comes from elsewhere (DESIGN.md section 3):

- **prefix cache**: the instruction and label block are the same for every
  chunk. They are evaluated once into sequence 0 of the KV cache and copied
  (cells are shared, not duplicated, in a unified cache) into each working
  sequence.
- **batched decode**: up to ``n_seq`` chunks decode together, one token of
  each per ``llama_decode``, so the weights are read once per step for all of
  them. Batching is continuous: a finished chunk's slot takes
  the next chunk at once (1.3x less CPU time than fixed groups of ``n_seq``
  on 96 CoNLL test sentences, where a few answers loop to the token limit).
- **a KV cache sized to the work, not to n_ctx x n_seq** (issue 15): one unified cache of
  ``kv_cells`` cells in all holds the prefix once and every sequence in flight. A text is
  admitted while its prompt plus ``ANSWER_GUESS`` answer tokens fit; when the running answers
  outgrow the cache, the newest sequence is evicted and decoded again later, so any
  ``kv_cells >= n_ctx`` is correct. Before, every sequence reserved ``n_ctx`` (1,024) cells: 9,216
  cells, ~210 MB at f16, for sentences that use ~40 each. A small cache also keeps attention
  cheap: llama.cpp attends over the cache's whole used range, masked cells included (measured,
  1 thread: a 32-token decode costs 4.3 ms a token beside an empty cache, 6.2 beside 3,584 cells).
- **runtime LoRA** (selection only): adapters in GGUF form can be switched on
  the one loaded base, so candidate experts are scored without merging.

Input text is tokenized with ``parse_special=False``: a user's text can never
inject control tokens. llama.cpp only ever sees valid UTF-8 (Python str).
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..prompts import STOP

# llama.cpp's CPU backend runs its threads in OpenMP; idle workers then spin between
# decodes (while Python picks tokens), stealing the cores from the main thread and from
# anything else running. Let them sleep. libgomp reads this once, when llama_cpp first
# loads it, hence at import, before any ``import llama_cpp``. Measured on 2 busy cores,
# 96 CoNLL sentences with 2 threads: 0.62 -> 4.4 sentences/s; 1 thread is unaffected.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_LOG_CALLBACK = None


def _silence_llama_logs() -> None:
    """llama.cpp logs every load to stderr; keep it quiet. Set again on each load, because
    the quantizer (samedge.converters.quantize) puts llama-cpp-python's printing callback back."""
    global _LOG_CALLBACK
    import llama_cpp

    if _LOG_CALLBACK is None:
        _LOG_CALLBACK = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p())


def default_threads() -> int:
    """One thread per core we may run on (decode is memory-bound; more threads only contend)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# Measured on 200 CoNLL test sentences, Q8_0, 2 busy cores (benchmarks/extract_speed.py has the levers):
# n_seq 64 in 2,048 cells against n_seq 8 in 9,216: 142 decodes instead of 403, 1.29x sentences/s at
# 2 threads, peak RSS 281 MB instead of 421. The cells bound the sequences in flight first (~35 sentences).
DEFAULT_N_SEQ = 64
DEFAULT_KV_CELLS = 2048       # the whole cache (None: n_ctx * (n_seq + 1), the sizing before issue 15)
DEFAULT_KV_TYPE = None        # None: llama.cpp's default (f16)
ANSWER_GUESS = 32             # cells a new sequence's answer is assumed to need when it is admitted


class LlamaEngine:
    """A GGUF model on the CPU, answering batches of prompts that share a prefix.

    ``n_ctx`` bounds one sequence (prefix + text + suffix + answer); ``kv_cells`` is the whole
    unified KV cache, shared by the prefix and every sequence in flight. Sequences are admitted
    while their cells fit (``ANSWER_GUESS`` answer cells assumed); a sequence that would overflow
    the cache is evicted (newest first) and decoded again later, so any ``kv_cells >= n_ctx`` works.
    """

    name = "llama.cpp"

    def __init__(self, model_path: str | Path, *, n_ctx: int = 1024, n_seq: int | None = None,
                 threads: int | None = None, n_batch: int = 512, n_ubatch: int | None = None,
                 kv_cells: int | None = None, kv_type: str | None = None, flash_attn: int | None = None,
                 schedule: str = "fifo"):
        import llama_cpp

        _silence_llama_logs()
        llama_cpp.llama_backend_init()
        self.lib = llama_cpp
        n_seq = n_seq or DEFAULT_N_SEQ
        self.n_ctx = n_ctx          # per sequence: prefix + chunk + answer must fit
        self.n_seq = n_seq
        self.threads = threads or default_threads()
        self.n_batch = n_batch
        self.kv_cells = max(n_ctx, kv_cells or DEFAULT_KV_CELLS or n_ctx * (n_seq + 1))
        if schedule not in ("fifo", "longest"):
            raise ValueError(f"unknown schedule {schedule!r}")
        self.schedule = schedule
        path = Path(model_path)
        if not path.is_file():
            raise UserError(f"{path}: model file not found")
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), llama_cpp.llama_model_default_params())
        if not self.model:
            raise UserError(f"{path}: llama.cpp could not load this GGUF file (truncated or not a model?)")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        params = llama_cpp.llama_context_default_params()
        # One unified KV cache: the shared prefix is stored once; each sequence adds its own tail.
        params.n_ctx = self.kv_cells
        params.n_batch = n_batch
        params.n_ubatch = n_ubatch or n_batch
        params.n_seq_max = n_seq + 1
        params.kv_unified = True
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.no_perf = True
        types = {"f32": llama_cpp.GGML_TYPE_F32, "f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}
        kv_type = kv_type or DEFAULT_KV_TYPE
        if kv_type is not None:   # None: llama.cpp's default (f16)
            if kv_type not in types:
                raise UserError(f"unknown KV cache type {kv_type!r}; choose {', '.join(types)}")
            params.type_k = params.type_v = types[kv_type]
        if flash_attn is not None:
            params.flash_attn_type = flash_attn
        elif kv_type not in (None, "f16", "f32"):
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED  # a quantized V cache needs it
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise UserError(f"{path}: could not create a llama.cpp context of {params.n_ctx} tokens")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(max(n_batch, n_seq), 0, n_seq + 1)
        self.stop_tokens = {self._special_id(STOP)}
        self._prefix: tuple = ()      # tokens held in sequence 0
        self._adapters: dict = {}
        self._active_adapter = None
        # Tokens evaluated (prefix apart), for throughput figures: prompt = text + suffix.
        self.stats = {"prompt_tokens": 0, "answer_tokens": 0, "prefix_tokens": 0, "decodes": 0,
                      "evicted_tokens": 0, "evictions": 0, "decode_cpu_s": 0.0}

    # --- tokens ---------------------------------------------------------------------

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        buf = (self.lib.llama_token * (len(data) + 8))()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, special)
        if n < 0:
            raise RuntimeError(f"tokenizer needs {-n} tokens for {len(data)} bytes")
        return list(buf[:n])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _special_id(self, text: str) -> int:
        ids = self.tokenize(text, special=True)
        if len(ids) != 1:
            raise UserError(f"the model's vocabulary has no single token for {text!r}; is this a ChatML model?")
        return ids[0]

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    # --- adapters (runtime LoRA, used by selection) -----------------------------------

    def set_adapter(self, path: str | Path | None, scale: float = 1.0) -> None:
        """Switch to a GGUF LoRA adapter (None: the plain model). Invalidates the prefix cache."""
        key = None if path is None else (str(path), float(scale))
        if key == self._active_adapter:
            return
        if path is None:
            self.lib.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            adapter = self._adapters.get(str(path))
            if adapter is None:
                adapter = self.lib.llama_adapter_lora_init(self.model, str(path).encode())
                if not adapter:
                    raise UserError(f"{path}: llama.cpp could not load this LoRA adapter")
                self._adapters[str(path)] = adapter
            arr = (self.lib.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(scale)
            self.lib.llama_set_adapters_lora(self.ctx, arr, 1, scales)
        self._active_adapter = key
        self._prefix = ()
        self.lib.llama_memory_clear(self.memory, True)

    # --- decoding ---------------------------------------------------------------------

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> None:
        b, i = self.batch, self.batch.n_tokens
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        b.n_tokens = i + 1

    def _decode(self) -> None:
        t = time.process_time()
        rc = self.lib.llama_decode(self.ctx, self.batch)
        self.stats["decode_cpu_s"] += time.process_time() - t
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")
        self.stats["decodes"] += 1

    def _feed(self, items) -> dict:
        """Evaluate (token, pos, seq, want_logits) items in n_batch-sized decodes; seq -> greedy next token.
        The argmax is taken over all of a decode's logits rows at once (llama.cpp stores them
        contiguously, in batch order), right after it: the next decode overwrites them."""
        out = {}
        for start in range(0, len(items), self.n_batch):
            self.batch.n_tokens = 0
            wanted = []
            for tok, pos, seq, want in items[start:start + self.n_batch]:
                self._add(tok, pos, seq, want)
                if want:
                    wanted.append(seq)
            self._decode()
            if wanted:
                rows = np.ctypeslib.as_array(self.lib.llama_get_logits(self.ctx), shape=(len(wanted), self.n_vocab))
                out.update(zip(wanted, rows.argmax(axis=1).tolist()))
        return out

    def _ensure_prefix(self, prefix: list[int]) -> None:
        if tuple(prefix) == self._prefix:
            return
        self.lib.llama_memory_clear(self.memory, True)
        self._feed([(t, i, 0, False) for i, t in enumerate(prefix)])
        self.stats["prefix_tokens"] += len(prefix)
        self._prefix = tuple(prefix)

    def complete(self, prefix: str, texts: list[str], suffix: str, max_tokens: int) -> list[tuple[str, bool]]:
        """Greedy answer for each ``prefix + text + suffix``: (answer, ended on the stop token).

        The prefix is evaluated once (and kept while it stays the same). Texts
        decode up to ``n_seq`` at a time with continuous batching: a sequence that
        finishes frees its slot for the next text at once, and the new text's
        prompt is evaluated in the same ``llama_decode`` as the running
        sequences' next tokens. A long (or looping) answer thus holds one slot,
        not a whole group of ``n_seq``. A text is admitted only while the KV
        cache has room for its prompt and ``ANSWER_GUESS`` answer tokens; when the
        running answers outgrow the cache, the newest sequence is evicted and its
        text decoded again later (greedy: the same answer).
        """
        if max_tokens <= 0:
            return [("", False) for _ in texts]
        prefix_ids = self.tokenize(prefix, special=True)
        suffix_ids = self.tokenize(suffix, special=True)
        n_prefix = len(prefix_ids)
        bodies = [self.tokenize(t) + suffix_ids for t in texts]
        for body in bodies:
            if n_prefix + len(body) + max_tokens > self.n_ctx:
                raise UserError(f"prompt of {n_prefix + len(body)} tokens plus {max_tokens} answer tokens "
                                f"exceeds the context of {self.n_ctx}")
        self._ensure_prefix(prefix_ids)
        results: list = [None] * len(bodies)
        generated: list = [[] for _ in bodies]
        order = range(len(bodies))
        if self.schedule == "longest":
            order = sorted(order, key=lambda i: -len(bodies[i]))
        pending = list(order)[::-1]                   # popped from the end
        free = list(range(self.n_seq, 0, -1))         # sequence ids 1..n_seq (0 holds the prefix)
        running: dict = {}                            # seq -> [text index, next position]
        admitted: list = []                           # running seqs, oldest first
        nxt: dict = {}                                # seq -> greedy next token
        guess = min(max_tokens, ANSWER_GUESS)
        cells = self.kv_cells
        stats = self.stats

        def used() -> int:
            return n_prefix + sum(pos - n_prefix for _, pos in running.values())

        def release(seq: int) -> None:
            del running[seq]
            admitted.remove(seq)
            self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
            free.append(seq)

        try:
            while pending or running:
                for seq in sorted(running):
                    i = running[seq][0]
                    token = nxt[seq]
                    if token in self.stop_tokens or self.lib.llama_vocab_is_eog(self.vocab, token):
                        results[i] = True
                    else:
                        generated[i].append(token)
                        if len(generated[i]) >= max_tokens:
                            results[i] = False   # cut off; no need to evaluate a token nobody reads
                    if results[i] is not None:
                        release(seq)
                # Every running sequence adds one cell this step: evict the newest until that fits.
                while len(admitted) > 1 and used() + len(admitted) > cells:
                    seq = admitted[-1]
                    i, pos = running[seq]
                    stats["evictions"] += 1
                    stats["evicted_tokens"] += pos - n_prefix
                    generated[i] = []
                    release(seq)
                    pending.append(i)
                items = []
                for seq in sorted(admitted):
                    i, pos = running[seq]
                    items.append((generated[i][-1], pos, seq, True))
                    running[seq][1] = pos + 1
                stats["answer_tokens"] += len(items)
                need = used()
                while free and pending and (not running or need + len(bodies[pending[-1]]) + guess <= cells):
                    seq, i = free.pop(), pending.pop()
                    body = bodies[i]
                    self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
                    self.lib.llama_memory_seq_cp(self.memory, 0, seq, 0, n_prefix)
                    items += [(t, n_prefix + j, seq, j == len(body) - 1) for j, t in enumerate(body)]
                    running[seq] = [i, n_prefix + len(body)]
                    admitted.append(seq)
                    need += len(body) + guess
                    stats["prompt_tokens"] += len(body)
                if items:
                    nxt = self._feed(items)
        finally:
            for seq in range(1, self.n_seq + 1):
                self.lib.llama_memory_seq_rm(self.memory, seq, -1, -1)
        return [(b"".join(self._piece(t) for t in toks).decode("utf-8", errors="replace"), done)
                for toks, done in zip(generated, results)]

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.ctx = None
        for adapter in getattr(self, "_adapters", {}).values():
            self.lib.llama_adapter_lora_free(adapter)
        self._adapters = {}
        if getattr(self, "model", None):
            self.lib.llama_model_free(self.model)
            self.model = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
