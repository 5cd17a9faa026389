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

import bisect
import re
from dataclasses import dataclass, field

from ..data.labels import Label, label_key

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


# --- parsing -----------------------------------------------------------------

@dataclass
class ParsedAnswer:
    pairs: list = field(default_factory=list)        # (label, mention), in answer order
    malformed: int = 0                               # lines that are not "type: mention"
    unknown_labels: dict = field(default_factory=dict)  # label -> count, dropped


# Matched against a stripped line. No lazy group before ``$``: that backtracks
# quadratically on long lines, and a looping model writes long lines.
_LINE_RE = re.compile(r"^(?:[-*•]\s*|\d{1,3}[.)]\s+)?([^:\n]{1,60}?)\s*:(.*)$", re.S)


_label_key = label_key  # the one definition lives beside Label


def _unquote(mention: str) -> str:
    if len(mention) >= 2 and mention[0] == mention[-1] and mention[0] in "\"'`":
        return mention[1:-1].strip()
    return mention


def answer_keys(labels: list[Label]) -> dict[str, str]:
    """Answer type (as label_key spells it) -> the tag it denotes: each label's prompt name, and its tag."""
    by_key = {_label_key(lab.tag): lab.tag for lab in labels}
    by_key.update({_label_key(lab.name): lab.tag for lab in labels})
    return by_key


def parse_answer(answer: str, labels: list[Label], answer_map: dict | None = None,
                 raw: bool = False) -> ParsedAnswer:
    """Read ``type: mention`` lines. Never raises: whatever cannot be read is counted.

    The model answers with the prompt's names; each pair carries the label's tag (the user's
    name for it). An answer spelled like a tag is accepted too, after the prompt names.
    ``answer_map`` (answer type's key -> tag, or None to drop) overrides that reading: it is learned
    from labeled examples (samedge.select.answer_map). ``raw``: every pair keeps its answer type's
    key, known or not (what the answer map is learned from)."""
    by_key = answer_keys(labels)
    if answer_map:
        by_key.update(answer_map)
    out = ParsedAnswer()
    if not isinstance(answer, str):
        out.malformed = 1
        return out
    answer = answer.split(IM_END, 1)[0]
    for line in answer.splitlines():
        stripped = line.strip()
        if not stripped or stripped.lower().rstrip(".") == NONE_ANSWER:
            continue
        m = _LINE_RE.match(stripped)
        if not m:
            out.malformed += 1
            continue
        label, mention = m.group(1).strip(), _unquote(m.group(2).strip())
        if not mention or mention.lower() == NONE_ANSWER:
            continue
        name = _label_key(label) if raw else by_key.get(_label_key(label))
        if not name:
            out.unknown_labels[label] = out.unknown_labels.get(label, 0) + 1
            continue
        out.pairs.append((name, mention))
    return out


# --- alignment ---------------------------------------------------------------

@dataclass
class Alignment:
    entities: list = field(default_factory=list)
    not_found: int = 0
    overlaps: int = 0


def _fold(s: str) -> str:
    """Case-fold character by character, keeping the length (so offsets stay valid).
    Characters whose fold is longer ("ß" -> "ss") are kept as they are."""
    out = []
    for c in s:
        f = c.casefold()
        out.append(f if len(f) == 1 else c)
    return "".join(out)


def _is_boundary(text: str, start: int, end: int) -> bool:
    """True when the match does not cut a word in two (letters/digits on both sides)."""
    before = start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
    after = end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    return before and after


class _Taken:
    """Disjoint spans taken so far, sorted, with an O(log n) overlap test."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def free(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start)
        if i and self.ends[i - 1] > start:
            return False
        return i == len(self.starts) or self.starts[i] >= end

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _search(haystack: str, needle: str, text: str, cursor: int, taken: _Taken, limit: int):
    """The best free occurrence of ``needle``: (start, end), or None; plus whether any exists.

    Preference: whole word after the cursor, whole word before it, then the same
    two inside a word. Scans stop at the first free whole-word match, so a long
    run of repeated answer lines stays linear.
    """
    n, size, found = 0, len(needle), False
    partial = None
    for lo, hi in ((cursor, len(haystack)), (0, cursor)):
        i = haystack.find(needle, lo)
        while 0 <= i < hi and n < limit:
            found, n = True, n + 1
            if taken.free(i, i + size):
                if _is_boundary(text, i, i + size):
                    return (i, i + size), True
                if partial is None:
                    partial = (i, i + size)
            i = haystack.find(needle, i + 1)
    return partial, found


def align(text: str, pairs, max_occurrences: int = 10_000) -> Alignment:
    """Map (label, mention) pairs to character spans of ``text``.

    Rules (tested in tests/test_prompts.py):
    - Answers list entities in text order, so each mention is looked for first
      after the previous aligned entity, then anywhere.
    - A repeated mention (the same line twice) takes the next unused occurrence,
      so "person: Ann" twice tags two occurrences of Ann.
    - Whole-word matches are preferred; a match inside a word is a fallback
      (scripts without spaces, e.g. CJK, only have those).
    - Exact case first, then case-insensitive (also when every exact-case
      occurrence is already taken).
    - A mention found nowhere is counted in ``not_found``.
    - A span that overlaps one already taken is dropped and counted in
      ``overlaps``: the first line of the answer wins. A mention repeated more
      often than the text has it counts as an overlap too.
    """
    result = Alignment()
    taken = _Taken()
    cursor = 0
    folded = None
    exhausted: set = set()  # mentions with no free occurrence left (taken only grows)
    for label, mention in pairs:
        mention = mention.strip() if isinstance(mention, str) else ""
        if not mention:
            result.not_found += 1
            continue
        if mention in exhausted:
            result.overlaps += 1
            continue
        span, found = _search(text, mention, text, cursor, taken, max_occurrences)
        if span is None:
            folded = _fold(text) if folded is None else folded
            span, found_folded = _search(folded, _fold(mention), text, cursor, taken, max_occurrences)
            found = found or found_folded
        if span is None:
            if found:
                result.overlaps += 1
                exhausted.add(mention)
            else:
                result.not_found += 1
            continue
        start, end = span
        taken.add(start, end)
        cursor = end
        result.entities.append({"start": start, "end": end, "label": label, "text": text[start:end]})
    result.entities.sort(key=lambda e: (e["start"], e["end"]))
    return result
