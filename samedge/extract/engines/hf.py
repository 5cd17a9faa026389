"""The transformers engine: greedy decoding of a batch of prompts (GPU hosts, training-time dev F1)."""

from __future__ import annotations

from ..prompts import STOP


class HFEngine:
    """Greedy answers from an HF causal LM (optionally a PEFT model)."""

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stop_id = tokenizer.convert_tokens_to_ids(STOP)

    @classmethod
    def load(cls, model_dir, dtype: str = "float32", device: str | None = None, **kw) -> "HFEngine":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(model_dir), **kw)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, prefix: str, texts: list[str], suffix: str, max_tokens: int) -> list[tuple[str, bool]]:
        """Greedy answer for each ``prefix + text + suffix``, with whether it ended on the stop token."""
        import torch

        prompts = [prefix + t + suffix for t in texts]
        answers = []
        device = next(self.model.parameters()).device
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_id
        for start in range(0, len(prompts), self.batch_size):
            batch = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start:start + self.batch_size]]
            width = max(len(ids) for ids in batch)
            # Left padding, so that every row's answer starts at the same position.
            input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch], device=device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
            with torch.no_grad():
                out = self.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_tokens,
                                          do_sample=False, eos_token_id=self.stop_id, pad_token_id=pad_id)
            for row in out[:, width:].tolist():
                finished = self.stop_id in row
                if finished:
                    row = row[:row.index(self.stop_id)]
                answers.append((self.tokenizer.decode(row, skip_special_tokens=True), finished))
        return answers
