"""``samedge select``: rank library experts for a target, without merging."""

import click

from ..config import build_default
from ..select.registry import strategy_names


@click.command("select")
@click.option("--target", "-t", help="A shipped target profile or a TOML file.")
@click.option("--texts", multiple=True, type=click.Path(dir_okay=False), help="Unlabeled target texts, one per line.")
@click.option("--labels", help="Label set, e.g. 'person,court=courts and tribunals'.")
@click.option("--dev", type=click.Path(dir_okay=False), help="Labeled target documents for performance selection.")
@click.option("--k", "k", type=int, default=build_default("k"), show_default=True, help="Experts to keep.")
@click.option("--select", "selection", type=click.Choice(strategy_names()), default="similarity",
              show_default=True, help="Ranking criterion.")
@click.option("--weighting", type=click.Choice(["softmax", "normalized", "uniform"]), default=build_default("weighting"),
              show_default=True)
@click.option("--temperature", type=float, default=build_default("temperature"), show_default=True)
@click.option("--library", type=click.Path(file_okay=False), envvar="SAMEDGE_LIBRARY", help="A user expert library.")
@click.option("--exclude", multiple=True, help="Experts to leave out (repeatable).")
@click.option("--sample", type=int, default=build_default("sample"), show_default=True, help="Target sentences per candidate (performance).")
@click.option("--seed", type=int, default=build_default("seed"), show_default=True)
@click.option("--threads", type=int, help="CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the selection report as JSON.")
def select(target, texts, labels, dev, k, selection, weighting, temperature, library, exclude, sample, seed, threads,
           as_json):
    """Score every expert for a target (similarity, performance, or both) and show the top k with weights."""
    import json

    from ..base import provision
    from ..build import BuildOptions, resolve_target
    from ..data.labels import parse_label_spec
    from ..library.library import Library
    from ..select.pipeline import select_experts

    opts = BuildOptions(target=target, texts=list(texts) or None, labels=parse_label_spec(labels) if labels else None,
                        dev=dev)
    experts = Library.open(library).experts(exclude=exclude)
    report = select_experts(resolve_target(opts), experts, base=provision(), k=k, strategy=selection,
                            weighting=weighting, temperature=temperature, sample=sample, seed=seed, threads=threads)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
