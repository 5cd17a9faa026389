"""``samedge extract-corpus``: a large corpus into sharded output, on Ray or a local process pool."""

import json
import sys

import click


@click.command("extract-corpus")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Output folder (shards, errors.jsonl, "
              "summary.json); rerun with the same folder to finish an interrupted run.")
@click.option("--bundle", "-b", type=click.Path(), help="Bundle directory (default: the last one built, then bundles/legal).")
@click.option("--engine", type=click.Choice(["ray", "local"]), default="ray", show_default=True,
              help="Ray (pip install 'samedge[ray]') or a process pool on this machine.")
@click.option("--address", help="Join a running Ray cluster: 'auto' or HOST:PORT (default: start a local Ray).")
@click.option("--num-actors", type=int, help="Workers, each with its own copy of the model (default: CPUs - 1 on "
              "Ray, CPUs with --engine local).")
@click.option("--num-cpus", type=int, help="Logical CPUs of a local Ray instance (default: actors + 1).")
@click.option("--threads", type=int, default=1, show_default=True, help="llama.cpp threads per worker.")
@click.option("--batch", "n_seq", type=int, default=8, show_default=True, help="Chunks decoded together per worker.")
@click.option("--answer-tokens", type=int, help="Most tokens of one answer (default: samedge extract's, 160).")
@click.option("--labels", help="Override the bundle's label set, e.g. 'person,court=courts and tribunals'.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="Shard format.")
@click.option("--shard-size", type=int, default=256, show_default=True, help="Documents per shard (a multiple of 16).")
@click.option("--glob", default="*", show_default=True, help="Files to take from directories (searched recursively).")
@click.option("--jsonl", "force_jsonl", is_flag=True, default=None, help="Read text inputs as JSONL; *.jsonl files are "
              "read so anyway, *.parquet files need a 'text' column.")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="Invalid UTF-8: the document fails (listed in errors.jsonl), or is read with U+FFFD.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON on stdout.")
def extract_corpus(paths, out, bundle, engine, address, num_actors, num_cpus, threads, n_seq, answer_tokens, labels,
                   fmt, shard_size, glob, force_jsonl, errors, as_json):
    """Extract entities from every document under PATHS into sharded output in OUT.

    \b
    Examples:
      samedge extract-corpus corpus/ --bundle bundles/legal -o out/
      samedge extract-corpus docs.jsonl -o out/ --engine ray --address auto --num-actors 32
      samedge extract-corpus corpus/ -o out/ --engine local --num-actors 4
    Shards hold the records of `samedge extract` (JSONL, or Parquet). A shard is
    written whole or not at all, so rerunning after a crash skips finished
    shards and duplicates nothing. Failed documents go to OUT/errors.jsonl with
    the reason; the exit code is then 2.
    """
    from ..corpus import run_corpus
    from ..data.labels import parse_label_spec

    summary = run_corpus(paths, out, bundle=bundle, engine=engine, address=address, num_actors=num_actors,
                         num_cpus=num_cpus, threads=threads, n_seq=n_seq,
                         answer_tokens=answer_tokens,
                         labels=parse_label_spec(labels) if labels else None, fmt=fmt, glob=glob, jsonl=force_jsonl,
                         errors=errors, shard_size=shard_size)
    totals, run = summary["totals"], summary["this_run"]
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    click.echo(f"{out}: {totals['shards']} shards, {totals['documents']} documents, {totals['entities']} entities, "
               f"{totals['failures']} failed (see {summary['errors_file']}); this run: {run['shards']} shards in "
               f"{run['seconds']:.1f}s, {summary['skipped_shards']} already done", err=True)
    if totals["failures"]:
        sys.exit(2)
