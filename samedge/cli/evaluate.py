"""``samedge eval``: a thin wrapper over samedge.evaluate."""

import json
from pathlib import Path

import click

GOLD_GLOB = "*.gold.jsonl"  # what --gold DIR reads, e.g. examples/


def load_gold(paths) -> list[dict]:
    """The documents of every gold file, in order; a directory stands for its *.gold.jsonl files."""
    from ..data.loading import load_documents
    from ..errors import UserError

    docs = []
    for path in map(Path, paths):
        files = sorted(path.glob(GOLD_GLOB)) if path.is_dir() else [path]
        if not files:
            raise UserError(f"{path}: a directory without {GOLD_GLOB} files")
        for f in files:
            docs += load_documents(f, need_entities=True)
    return docs


@click.command("eval")
@click.option("--gold", "-g", required=True, multiple=True, type=click.Path(),
              help=f"Gold documents: JSONL with spans, a Label Studio JSON export, or a CoNLL/BIO file; repeatable; "
                   f"a directory reads its "
                   f"{GOLD_GLOB} files.")
@click.option("--pred", "-p", required=True, type=click.Path(dir_okay=False),
              help="Predicted documents: JSONL as written by `samedge extract` (or its --format labelstudio), "
                   "or CoNLL/BIO.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def eval_cmd(gold, pred, as_json):
    """Entity-level micro precision, recall and F1 (exact span and type), with a per-label table.

    Documents are matched by id, or by position when the two files share no ids
    (two CoNLL files, say). Matched documents must have the same text.
    """
    from ..data.loading import load_documents
    from ..evaluate import score_documents

    report = score_documents(load_gold(gold), load_documents(pred))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.table())
