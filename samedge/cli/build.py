"""``samedge build``: select, merge, quantize and bundle experts for a target."""

import click

from ..build import DEFAULT_K, DEFAULT_SELECTION
from ..select.label_alignment import DEFAULT_THRESHOLD as ALIGN_THRESHOLD
from ..select.registry import AUTO_K, strategy_names


class _KType(click.ParamType):
    name = "N|auto"

    def convert(self, value, param, ctx):
        if value == AUTO_K or isinstance(value, int):
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor {AUTO_K!r}", param, ctx)


K_TYPE = _KType()
from ..select.weighting import DEFAULT_WEIGHTING


@click.command("build")
@click.option("--target", "-t", help="A shipped target profile (see `samedge targets list`), a TOML file, or the name "
              "of a new target defined by --labels and --texts.")
@click.option("--texts", multiple=True, type=click.Path(dir_okay=False), help="Unlabeled target texts, one per line "
              "(replace the profile's; repeatable).")
@click.option("--labels", help="Label set, e.g. 'PER=names of people,COURT' (replaces the profile's). Entities carry "
              "these names exactly; the prompt uses readable ones (PER: person).")
@click.option("--dev", type=click.Path(dir_okay=False), help="A few labeled target documents (JSONL/CoNLL): "
              "performance selection then scores experts by F1 instead of agreement.")
@click.option("--k", "k", type=K_TYPE, default=DEFAULT_K, show_default=True,
              help="Experts to merge, or 'auto': those within 80% of the best performance score (1 to 5).")
@click.option("--select", "selection", type=click.Choice(strategy_names()),
              default=DEFAULT_SELECTION, show_default=True,
              help="How experts are ranked: domain similarity, sampled-instance performance (F1 on --dev, or "
                   "agreement between experts without it), or both (the default: similarity alone measured weakest).")
@click.option("--method", default="ties", show_default=True, help="Merge method: linear, ties, dare_linear, dare_ties.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Merge method parameter, e.g. density=0.5.")
@click.option("--weighting", type=click.Choice(["softmax", "normalized", "uniform"]), default=DEFAULT_WEIGHTING, show_default=True,
              help="Merge weights from selection scores.")
@click.option("--temperature", type=float, default=0.05, show_default=True, help="Softmax temperature for the weights.")
@click.option("--ensemble", type=click.Choice(["union", "vote"]), help="Two merged models, one per selection criterion "
              "(similarity, performance), with predictions combined by union or vote.")
@click.option("--quant", default="q8_0", show_default=True, help="f16, q8_0, q4_0, q4_k_m or q5_k_m.")
@click.option("--library", type=click.Path(file_okay=False), envvar="SAMEDGE_LIBRARY", help="A user expert library.")
@click.option("--exclude", multiple=True, help="Experts to leave out (repeatable).")
@click.option("--sample", type=int, default=32, show_default=True, help="Target sentences scored per candidate (performance selection).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--threads", type=int, help="CPU threads (default: the cores available).")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Bundle directory (default: bundles/TARGET).")
@click.option("--align-threshold", type=float, default=ALIGN_THRESHOLD, show_default=True,
              help="Show a label the merged experts never saw under their closest known name when the embedder's "
                   "similarity reaches this (your tags are kept in the output); measured on dev in BENCHMARKS.md "
                   "'Label alignment'.")
@click.option("--no-align", is_flag=True, help="Show the labels to the model exactly as given.")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print bundle.json (with stage timings) as JSON.")
def build(target, texts, labels, dev, k, selection, method, params, weighting, temperature, ensemble, quant, library, exclude,
          sample, seed, threads, out, align_threshold, no_align, force, as_json):
    """Select experts for a target domain, merge them exactly, quantize, and write a bundle.

    \b
    Examples:
      samedge build --target legal
      samedge build --target my_domain.toml --k 2 --method linear --quant q4_k_m
      samedge build --labels 'drug,disease' --texts notes.txt --out bundles/clinic
      samedge build --target contracts --labels 'PER,ORG,LEGISLATION/ACT' --texts contracts.txt
    The bundle (model.gguf, bundle.json, Modelfile) appears only when complete.
    """
    import json

    from ..build import BuildOptions
    from ..build import build as run_build
    from ..data.labels import parse_label_spec
    from ..train.trainer import parse_overrides

    opts = BuildOptions(target=target, texts=list(texts) or None, labels=parse_label_spec(labels) if labels else None,
                        dev=dev, k=k, selection=selection, method=method, method_params=parse_overrides(params),
                        weighting=weighting, temperature=temperature, quant=quant.lower(), library=library,
                        exclude=tuple(exclude), sample=sample, seed=seed, threads=threads, ensemble=ensemble,
                        align_threshold=None if no_align else align_threshold, force=force)
    out = out or f"bundles/{target if target and '/' not in target and not target.endswith('.toml') else 'custom'}"
    result = run_build(opts, out, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
