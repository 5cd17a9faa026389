"""Label Studio JSON: read exports as labeled documents, write predictions to import.

Reading (``read_labelstudio``; ``load_documents`` picks it for a ``.json`` file holding a JSON
array): a Label Studio JSON export is a list of tasks::

    [{"id": 7, "data": {"text": "..."},
      "annotations": [{"result": [{"from_name": "label", "to_name": "text", "type": "labels",
                                   "value": {"start": 0, "end": 5, "text": "Paris", "labels": ["location"]}}]}],
      "predictions": [...]}, ...]

Rules (each broken one is a one-line ``DataError`` naming the file and the task, by its id or,
without one, its index; the whole file is checked before any document is returned):

- the text is ``data.text``; the document id is ``data.id`` when present (what
  ``--format labelstudio`` writes, so ids survive a round trip through Label Studio), else the
  task's ``id``, else ``FILE-INDEX``;
- entities come from the task's annotation. Cancelled annotations (``was_cancelled``) are
  ignored; **a task with more than one remaining annotation is refused** (several annotators:
  resolve them in Label Studio, or export one annotator's work, rather than have samedge guess);
- a file in which no task has annotations is a predictions file (what ``--format labelstudio``
  writes): entities come from each task's single prediction. In a file with annotations,
  predictions are never read, so model output never passes for gold;
- every result is a ``labels`` span: ``value`` with integer ``start < end`` inside the text
  (Unicode code points, as Label Studio counts them), exactly one label, and ``value.text``
  (when given) equal to the text slice. Overlapping spans are refused.

Writing (``to_task``, ``LabelStudioWriter``): one task per document with the document in
``data`` (``text``, ``id``) and the entities as one prediction whose ``model_version`` names
the bundle; results use ``from_name`` "label" and ``to_name`` "text", matching the labeling
config in the README.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from .decode import read_text

FROM_NAME, TO_NAME = "label", "text"


def looks_like_json_array(path: Path) -> bool:
    """True when the file's first non-blank character (after a BOM) is ``[``: a JSON array, which
    a JSONL file never starts with (its lines are objects)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"["


def _where(task, index: int) -> str:
    if isinstance(task, dict) and isinstance(task.get("id"), (int, str)) and not isinstance(task.get("id"), bool):
        return f"task id {task['id']}"
    return f"task at index {index}"


def read_labelstudio(path: str | Path, need_entities: bool = False) -> list[dict]:
    path = Path(path)
    try:
        tasks = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(tasks, list):
        raise DataError(path, 0, "expected a JSON array of Label Studio tasks")
    if not tasks:
        raise DataError(path, 0, "no tasks found")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(path, 0, f"{_where(task, i)}: not a Label Studio task (an object with 'data')")
    annotated = any(_annotations(path, t, i) for i, t in enumerate(tasks))
    source = "annotations" if annotated else "predictions"
    docs, ids = [], set()
    for i, task in enumerate(tasks):
        where = _where(task, i)

        def bad(message, where=where):
            return DataError(path, 0, f"{where}: {message}")

        text = task["data"].get("text")
        if not isinstance(text, str):
            raise bad("'data.text' must be a string (samedge reads a Text tag over $text)")
        doc_id = task["data"].get("id", task.get("id", f"{path.stem}-{i}"))
        doc_id = str(doc_id)
        if doc_id in ids:
            raise bad(f"document id {doc_id!r} appears twice")
        ids.add(doc_id)
        if annotated:
            chosen = _annotations(path, task, i)
            if len(chosen) > 1:
                raise bad(f"{len(chosen)} annotations (several annotators); samedge takes one per task: "
                          "resolve them in Label Studio or export one annotator's")
        else:
            chosen = task.get("predictions") or []
            if not isinstance(chosen, list):
                raise bad("'predictions' must be a list")
            if len(chosen) > 1:
                raise bad(f"{len(chosen)} predictions and no annotations; samedge reads one per task")
        if not chosen:
            if need_entities:
                raise bad(f"no {source[:-1]} (every task of a labeled file needs one)")
            entities = []
        else:
            entities = _entities(chosen[0], text, bad)
        docs.append({"id": doc_id, "text": text, "entities": entities})
    return docs


def _annotations(path, task, index) -> list:
    raw = task.get("annotations")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise DataError(path, 0, f"{_where(task, index)}: 'annotations' must be a list of objects")
    return [a for a in raw if not a.get("was_cancelled")]


def _entities(item, text: str, bad) -> list[dict]:
    if not isinstance(item, dict) or not isinstance(item.get("result", []), list):
        raise bad("an annotation must be an object with a 'result' list")
    entities = []
    for k, result in enumerate(item.get("result", [])):
        what = f"result {k}"
        if not isinstance(result, dict):
            raise bad(f"{what} is not an object")
        kind = result.get("type", "labels")
        if kind != "labels":
            raise bad(f"{what} has type {kind!r}; samedge reads 'labels' spans only")
        value = result.get("value")
        if not isinstance(value, dict):
            raise bad(f"{what} has no 'value'")
        start, end = value.get("start"), value.get("end")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
            raise bad(f"{what}: 'value' needs integer 'start' and 'end' (got {start!r}, {end!r})")
        if not 0 <= start < end <= len(text):
            raise bad(f"{what}: span [{start}, {end}) outside the text (length {len(text)})")
        labels = value.get("labels")
        if not isinstance(labels, list) or not labels:
            raise bad(f"{what} has no labels")
        if len(labels) > 1 or not isinstance(labels[0], str) or not labels[0]:
            raise bad(f"{what} has labels {labels!r}; samedge needs exactly one label name per span")
        if "text" in value and value["text"] != text[start:end]:
            raise bad(f"{what}: value.text {value['text']!r} != text[{start}:{end}] {text[start:end]!r} "
                      "(offsets must count Unicode code points)")
        entities.append({"start": start, "end": end, "label": labels[0], "text": text[start:end]})
    entities.sort(key=lambda e: (e["start"], e["end"]))
    for a, b in zip(entities, entities[1:]):
        if b["start"] < a["end"]:
            raise bad(f"spans [{a['start']}, {a['end']}) {a['label']!r} and [{b['start']}, {b['end']}) "
                      f"{b['label']!r} overlap")
    return entities


def to_task(doc: dict, model_version: str = "samedge") -> dict:
    """One Label Studio task holding ``doc`` and its entities as a prediction."""
    result = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
               "value": {"start": e["start"], "end": e["end"], "text": e["text"], "labels": [e["label"]]}}
              for e in doc["entities"]]
    return {"data": {"text": doc["text"], "id": str(doc["id"])},
            "predictions": [{"model_version": model_version, "result": result}]}


class LabelStudioWriter:
    """A JSON array written one task at a time: ``start(labels, meta)``, ``document(doc)``, ``end()``
    (the opening bracket, a comma before every task but the first, the closing bracket)."""

    def __init__(self, out):
        self.out = out
        self.model_version = "samedge"
        self.n = 0

    def start(self, labels=(), meta: dict | None = None) -> None:
        self.model_version = (meta or {}).get("model_version") or self.model_version
        self.out.write("[")

    def document(self, doc: dict) -> None:
        task = json.dumps(to_task(doc, self.model_version), ensure_ascii=False)
        self.out.write(("," if self.n else "") + "\n" + task)
        self.n += 1

    def end(self) -> None:
        self.out.write("\n]\n")


def labelstudio_json(docs, model_version: str = "samedge") -> str:
    return json.dumps([to_task(d, model_version) for d in docs], ensure_ascii=False, indent=1) + "\n"


def labeling_config(labels) -> str:
    """The Label Studio labeling config matching what ``to_task`` writes."""
    from xml.sax.saxutils import quoteattr
    rows = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in labels)
    return (f"<View>\n  <Labels name=\"{FROM_NAME}\" toName=\"{TO_NAME}\">\n{rows}  </Labels>\n"
            f"  <Text name=\"{TO_NAME}\" value=\"$text\"/>\n</View>\n")
