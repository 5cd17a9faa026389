"""The ``samedge`` spaCy pipeline component: a bundle's entities as ``doc.ents``.

    import spacy
    nlp = spacy.blank("en")
    nlp.add_pipe("samedge", config={"bundle": "bundles/legal"})
    doc = nlp("The High Court in London ruled on 3 May 2021.")
    [(e.text, e.label_) for e in doc.ents]

Installed with ``pip install 'samedge[spacy]'``, the factory is registered through spaCy's
``spacy_factories`` entry point, so ``add_pipe("samedge")`` and ``spacy.load`` find it without
an import; importing this module registers it too.

Config (every key optional):

- ``bundle``: the bundle directory (a string; default: samedge's default bundle). Relative paths
  are resolved against the working directory when the pipeline is built or loaded.
- ``alignment_mode``: how character offsets become token spans, spaCy's ``Doc.char_span`` modes.
  The default ``"strict"`` keeps only entities whose offsets fall on token boundaries, so every
  span in ``doc.ents`` is exactly the Extractor's; ``"expand"`` widens the others to the tokens
  they touch, ``"contract"`` narrows them to the tokens inside. Whatever the mode, an entity that
  does not align is counted in ``doc.user_data["samedge"]["misaligned"]`` (and listed in
  ``misaligned_entities``), never dropped silently.
- ``overwrite_ents``: after another entity recognizer (``ner``, ``entity_ruler``), False (the
  default) keeps its entities and adds only samedge's that overlap none of them; True lets
  samedge's entities win and keeps only the existing ones that overlap none of samedge's.
  Among samedge's own spans (which overlap only after "expand"), ``spacy.util.filter_spans``
  decides (the longest, then the first).
- ``labels``: override the bundle's label set, as ``samedge extract --labels`` does.
- ``threads``, ``n_seq``: llama.cpp threads and chunks decoded together.

``nlp.pipe(texts, batch_size=N)`` hands each batch of N documents to one ``extract_many`` call,
so their chunks decode together. ``doc.user_data["samedge"]`` holds, per document, the
Extractor's ``entities`` (unchanged) and ``counts``, and ``misaligned``, ``misaligned_entities``,
``overlapping`` (samedge spans not added because of the overlap rule) and ``replaced`` (existing
entities removed, with ``overwrite_ents``). ``nlp.to_disk`` stores nothing for the component: its
config names the bundle, which ``spacy.load`` loads (and verifies) again.
"""

from typing import Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans, minibatch

ALIGNMENT_MODES = ("strict", "contract", "expand")
USER_DATA_KEY = "samedge"


class SamedgeComponent:
    """Sets ``doc.ents`` from a samedge Extractor (see the module docstring for the config)."""

    def __init__(self, nlp: Language, name: str = "samedge", *, bundle: Optional[str] = None,
                 alignment_mode: str = "strict", overwrite_ents: bool = False, labels: Optional[str] = None,
                 threads: Optional[int] = None, n_seq: int = 8, extractor=None):
        if alignment_mode not in ALIGNMENT_MODES:
            raise ValueError(f"samedge: alignment_mode {alignment_mode!r} is not one of {', '.join(ALIGNMENT_MODES)}")
        self.name = name
        self.alignment_mode = alignment_mode
        self.overwrite_ents = overwrite_ents
        if extractor is None:
            from ..data.labels import parse_label_spec
            from ..extract.extractor import Extractor
            extractor = Extractor.load(bundle, threads=threads, n_seq=n_seq,
                                       labels=parse_label_spec(labels) if labels else None)
        self.extractor = extractor

    @property
    def labels(self) -> tuple:
        return tuple(lab.name for lab in self.extractor.labels)

    def __call__(self, doc: Doc) -> Doc:
        return self.set_annotations(doc, self.extractor.extract_many([doc.text], ids=["0"])[0])

    def pipe(self, stream, *, batch_size: int = 128):
        """Each batch of ``batch_size`` docs is one ``extract_many`` call."""
        for batch in minibatch(stream, size=batch_size):
            results = self.extractor.extract_many([doc.text for doc in batch], ids=[str(i) for i in range(len(batch))])
            for doc, result in zip(batch, results):
                yield self.set_annotations(doc, result)

    def set_annotations(self, doc: Doc, result: dict) -> Doc:
        spans, misaligned = [], []
        for e in result["entities"]:
            span = doc.char_span(e["start"], e["end"], label=e["label"], alignment_mode=self.alignment_mode)
            if span is None or (span.start_char, span.end_char) != (e["start"], e["end"]):
                misaligned.append(e)
            if span is not None and len(span):
                spans.append(span)
        own = filter_spans(spans)
        overlapping = len(spans) - len(own)
        existing = list(doc.ents)
        replaced = 0
        if self.overwrite_ents:
            taken = {i for s in own for i in range(s.start, s.end)}
            kept = [s for s in existing if not taken.intersection(range(s.start, s.end))]
            replaced = len(existing) - len(kept)
            ents = kept + own
        else:
            taken = {i for s in existing for i in range(s.start, s.end)}
            added = [s for s in own if not taken.intersection(range(s.start, s.end))]
            overlapping += len(own) - len(added)
            ents = existing + added
        doc.ents = sorted(ents, key=lambda s: s.start)
        doc.user_data[USER_DATA_KEY] = {
            "entities": [dict(e) for e in result["entities"]], "counts": dict(result.get("counts") or {}),
            "alignment_mode": self.alignment_mode, "misaligned": len(misaligned),
            "misaligned_entities": [dict(e) for e in misaligned], "overlapping": overlapping, "replaced": replaced}
        return doc

    # The component holds no weights of its own: the config names the bundle, loaded again on spacy.load.
    def to_disk(self, path, *, exclude=tuple()) -> None:
        return None

    def from_disk(self, path, *, exclude=tuple()) -> "SamedgeComponent":
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return b""

    def from_bytes(self, data: bytes, *, exclude=tuple()) -> "SamedgeComponent":
        return self


@Language.factory(
    "samedge",
    default_config={"bundle": None, "alignment_mode": "strict", "overwrite_ents": False, "labels": None,
                    "threads": None, "n_seq": 8},
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
)
def make_samedge(nlp: Language, name: str, bundle: Optional[str], alignment_mode: str, overwrite_ents: bool,
                 labels: Optional[str], threads: Optional[int], n_seq: int) -> SamedgeComponent:
    return SamedgeComponent(nlp, name, bundle=bundle, alignment_mode=alignment_mode, overwrite_ents=overwrite_ents,
                            labels=labels, threads=threads, n_seq=n_seq)
