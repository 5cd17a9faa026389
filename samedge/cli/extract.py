"""``samedge extract``: entities with character offsets, on the CPU, offline."""

import sys

import click


@click.command("extract")
@click.argument("paths", nargs=-1, required=True)
@click.option("--bundle", "-b", type=click.Path(), help="Bundle directory (default: the last one built, then bundles/legal).")
@click.option("--labels", help="Override the bundle's label set, e.g. 'person,court=courts and tribunals'.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "conll", "spacy", "table", "html", "labelstudio"]),
              help="Output format (default: table on a terminal, else jsonl). html: one self-contained page; "
                   "labelstudio: a JSON array of tasks with predictions, to import into Label Studio.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here (atomically) instead of stdout.")
@click.option("--glob", default="*", show_default=True, help="Files to take from directories (searched recursively).")
@click.option("--jsonl", "force_jsonl", is_flag=True, default=None, help="Read inputs as JSONL ({\"id\",\"text\"} per line); "
              "*.jsonl files are read so anyway.")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="Invalid UTF-8: stop with an error naming the byte offset, or replace it with U+FFFD.")
@click.option("--threads", type=int, help="CPU threads for llama.cpp (default: the cores available).")
@click.option("--batch", "n_seq", type=int, default=None, help="Chunks decoded together at most (default: the engine's, 64).")
def extract(paths, bundle, labels, fmt, output, glob, force_jsonl, errors, threads, n_seq):
    """Find entities in PATHS (files, directories, or - for stdin) with a bundle.

    \b
    Examples:
      samedge extract contract.txt
      samedge extract docs/ --glob '*.txt' -o entities.jsonl
      cat notes.txt | samedge extract - --format table
    Each record holds id, text, entities (start, end, label, text; end exclusive)
    and counts (chunks, parse failures, dropped labels). Inputs that cannot be
    read are listed on stderr (one 'error:' line each), the others processed;
    the exit code is then 2.
    """
    from ..extract.api import run_extract
    from ..data.labels import parse_label_spec

    fmt = fmt or ("table" if output is None and sys.stdout.isatty() else "jsonl")
    summary = run_extract(paths, bundle=bundle, labels=parse_label_spec(labels) if labels else None, fmt=fmt,
                          output=output, glob=glob, jsonl=force_jsonl, errors=errors, threads=threads, n_seq=n_seq,
                          echo=click.echo)
    failures = summary["failures"]
    if summary["documents"] or not failures:
        click.echo(f"bundle: {summary['bundle']}; {summary['documents']} documents, {summary['entities']} entities"
                   + (f", {len(failures)} failed" if failures else ""), err=True)
    for failure in failures:  # one line each; a run whose only input failed prints just that line
        click.echo("error: " + failure.replace("\r", "\\r").replace("\n", "\\n"), err=True)
    if failures:
        sys.exit(2)
