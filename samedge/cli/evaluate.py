"""``samedge eval``: a thin wrapper over samedge.evaluate."""

import json

import click


@click.command("eval")
@click.option("--gold", "-g", required=True, type=click.Path(dir_okay=False),
              help="Gold documents: JSONL with spans, a Label Studio JSON export, or a CoNLL/BIO file.")
@click.option("--pred", "-p", required=True, type=click.Path(dir_okay=False),
              help="Predicted documents: JSONL as written by `samedge extract` (or its --format labelstudio), "
                   "or CoNLL/BIO.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def eval_cmd(gold, pred, as_json):
    """Entity-level micro precision, recall and F1 (exact span and type), with a per-label table.

    Documents are matched by id, or by position when the two files share no ids
    (two CoNLL files, say). Matched documents must have the same text.
    """
    from ..evaluate import score_documents
    from ..data.loading import load_documents

    report = score_documents(load_documents(gold, need_entities=True), load_documents(pred))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.table())
