"""The prompt, the answer format, the answer parser and span alignment: the one place for all of it.

Prompt (ChatML, the base model's chat template, rendered here so that training,
llama.cpp and transformers see the same string)::

    <|im_start|>system
    Extract named entities. ...<|im_end|>
    <|im_start|>user
    Types:
    person: names of people
    ...
    Text:
    {text}<|im_end|>
    <|im_start|>assistant
    {answer}<|im_end|>

Everything before ``{text}`` depends only on the label set, so the runtime
evaluates it once and reuses the KV cache for every chunk (``split_prompt``).
The prefix ends with a newline, which the tokenizer always keeps as its own
token, so tokenising prefix and suffix apart equals tokenising the whole.

Answer format: one ``type: mention`` per line, in text order, or ``none``.
It is the most compact format we found: no JSON brackets or quotes to
generate (about 40% fewer tokens than a JSON list on CoNLL), and a line that is
garbled costs only that line.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from .data.labels import Label

SYSTEM = ("Extract named entities. Answer one per line as type: mention, in the order they "
          "appear. Use only the types listed. Answer none if there are none.")
NONE_ANSWER = "none"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
STOP = IM_END


def label_block(labels: list[Label]) -> str:
    return "\n".join(f"{lab.name}: {lab.description}" for lab in labels)


def split_prompt(labels: list[Label]) -> tuple[str, str]:
    """(prefix, suffix) around the text: ``prompt = prefix + text + suffix``."""
    prefix = (f"{IM_START}system\n{SYSTEM}{IM_END}\n{IM_START}user\nTypes:\n"
              f"{label_block(labels)}\nText:\n")
    suffix = f"{IM_END}\n{IM_START}assistant\n"
    return prefix, suffix


def build_prompt(text: str, labels: list[Label]) -> str:
    prefix, suffix = split_prompt(labels)
    return prefix + clean_text(text) + suffix


def clean_text(text: str) -> str:
    """The text as the model sees it: chat markers are defused (they would end the turn).
    The replacement keeps the length, so offsets stay valid."""
    return text.replace(IM_START, "<¦im_start¦>").replace(IM_END, "<¦im_end¦>")


def format_answer(entities: list[dict], labels: list[Label] | None = None) -> str:
    """Gold answer for training: entities in text order, ``none`` when empty."""
    allowed = None if labels is None else {lab.name for lab in labels}
    lines = [f"{e['label']}: {e['text']}" for e in sorted(entities, key=lambda e: (e["start"], e["end"]))
             if allowed is None or e["label"] in allowed]
    return "\n".join(lines) if lines else NONE_ANSWER


def training_labels(domain_labels: list[Label], negative_pool: list[Label], rng: random.Random,
                    max_negatives: int = 3) -> list[Label]:
    """The label set shown in a training prompt: the domain's labels plus a few it does not
    use (so the model learns to answer only for listed types), in shuffled order."""
    names = {lab.name for lab in domain_labels}
    pool = [lab for lab in negative_pool if lab.name not in names]
    negatives = rng.sample(pool, min(len(pool), rng.randint(0, max_negatives)))
    labels = list(domain_labels) + negatives
    rng.shuffle(labels)
    return labels


# --- parsing -----------------------------------------------------------------

@dataclass
class ParsedAnswer:
    pairs: list = field(default_factory=list)        # (label, mention), in answer order
    malformed: int = 0                               # lines that are not "type: mention"
    unknown_labels: dict = field(default_factory=dict)  # label -> count, dropped


_LINE_RE = re.compile(r"^\s*[-*•]?\s*([^:\n]{1,60}?)\s*:\s*(.+?)\s*$")


def parse_answer(answer: str, labels: list[Label]) -> ParsedAnswer:
    """Read ``type: mention`` lines. Never raises: whatever cannot be read is counted."""
    by_lower = {lab.name.lower(): lab.name for lab in labels}
    out = ParsedAnswer()
    if not isinstance(answer, str):
        out.malformed = 1
        return out
    answer = answer.split(IM_END, 1)[0]
    for line in answer.splitlines():
        stripped = line.strip()
        if not stripped or stripped.lower().rstrip(".") == NONE_ANSWER:
            continue
        m = _LINE_RE.match(line)
        if not m:
            out.malformed += 1
            continue
        label, mention = m.group(1).strip().lower(), m.group(2).strip().strip('"')
        if not mention or mention.lower() == NONE_ANSWER:
            continue
        if label not in by_lower:
            out.unknown_labels[label] = out.unknown_labels.get(label, 0) + 1
            continue
        out.pairs.append((by_lower[label], mention))
    return out


# --- alignment ---------------------------------------------------------------

@dataclass
class Alignment:
    entities: list = field(default_factory=list)
    not_found: int = 0
    overlaps: int = 0


def _is_boundary(text: str, start: int, end: int) -> bool:
    """True when the match does not cut a word in two (letters/digits on both sides)."""
    before = start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
    after = end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    return before and after


def _occurrences(haystack: str, needle: str):
    i = haystack.find(needle)
    while i >= 0:
        yield i
        i = haystack.find(needle, i + 1)


def align(text: str, pairs, max_occurrences: int = 10_000) -> Alignment:
    """Map (label, mention) pairs to character spans of ``text``.

    Rules (tested in tests/test_prompts.py):
    - Answers list entities in text order, so each mention is looked for first
      after the previous aligned entity, then anywhere.
    - A repeated mention (the same line twice) takes the next unused occurrence,
      so "person: Ann" twice tags two occurrences of Ann.
    - Whole-word matches are preferred; a match inside a word is a fallback
      (scripts without spaces, e.g. CJK, only have those).
    - Exact case first, then case-insensitive.
    - A mention found nowhere is counted in ``not_found``.
    - A span that overlaps one already taken is dropped and counted in ``overlaps``.
    """
    result = Alignment()
    taken: list[tuple[int, int]] = []
    cursor = 0
    folded = text.casefold() if len(text.casefold()) == len(text) else None
    for label, mention in pairs:
        candidates = []
        for haystack, needle in ((text, mention), (folded, mention.casefold() if folded else None)):
            if haystack is None or not needle or len(needle) != len(mention):
                continue
            for n, start in enumerate(_occurrences(haystack, needle)):
                if n >= max_occurrences:
                    break
                end = start + len(mention)
                candidates.append((not _is_boundary(text, start, end), haystack is not text,
                                   start < cursor, start, end))
            if candidates:
                break
        if not candidates:
            result.not_found += 1
            continue
        free = [c for c in candidates if all(c[4] <= s or c[3] >= e for s, e in taken)]
        if not free:
            result.overlaps += 1
            continue
        # Preference: whole word, exact case, after the cursor, earliest.
        *_, start, end = min(free)
        taken.append((start, end))
        cursor = end
        result.entities.append({"start": start, "end": end, "label": label, "text": text[start:end]})
    result.entities.sort(key=lambda e: (e["start"], e["end"]))
    return result
