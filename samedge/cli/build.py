"""``samedge build``: select, merge, quantize and bundle experts for a target."""

import click
from click.core import ParameterSource

from ..config import AGREEMENT_MODES, AUTO_K, build_default
from ..select.registry import strategy_names


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


@click.command("build")
@click.option("--target", "-t", help="A shipped target profile (see `samedge targets list`), a TOML file, or the name "
              "of a new target defined by --labels and --texts.")
@click.option("--texts", multiple=True, type=click.Path(dir_okay=False), help="Unlabeled target texts, one per line "
              "(replace the profile's; repeatable).")
@click.option("--labels", help="Label set, e.g. 'PER=names of people,COURT' (replaces the profile's). Entities carry "
              "these names exactly; the prompt uses readable ones (PER: person).")
@click.option("--dev", type=click.Path(dir_okay=False), help="A few labeled target documents (JSONL/CoNLL): "
              "performance selection then scores experts by F1 instead of agreement.")
@click.option("--k", "k", type=K_TYPE, default=build_default("k"), show_default=True,
              help="Experts to merge, or 'auto': those within 80% of the best performance score (1 to 5). "
                   "3 measured best on dev (auto ties it; k=1 is 5 F1 worse: BENCHMARKS.md 'Build defaults').")
@click.option("--select", "selection", type=click.Choice(strategy_names()),
              default=build_default("selection"), show_default=True,
              help="How experts are ranked: domain similarity, sampled-instance performance (F1 on --dev, or "
                   "agreement between experts without it), or both (the default: similarity alone measured weakest).")
@click.option("--method", default=build_default("method"), show_default=True,
              help="Merge method: linear, ties, dare_linear, dare_ties (ties measured best on dev; linear -0.5, "
                   "dare_ties -2.3 F1).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Merge method parameter, e.g. density=0.5 (ties' default; 0.3 and 0.8 were not measurably "
                   "better on dev).")
@click.option("--weighting", type=click.Choice(["softmax", "normalized", "uniform"]), default=build_default("weighting"),
              show_default=True, help="Merge weights from selection scores (uniform measured best on dev).")
@click.option("--temperature", type=float, default=build_default("temperature"), show_default=True, help="Softmax temperature for the weights.")
@click.option("--ensemble", type=click.Choice(["union", "vote"]), help="Two merged models, one per selection criterion "
              "(similarity, performance), with predictions combined by union or vote.")
@click.option("--quant", default=build_default("quant"), show_default=True, help="f16, q8_0, q4_0, q4_k_m or q5_k_m.")
@click.option("--library", type=click.Path(file_okay=False), envvar="SAMEDGE_LIBRARY", help="A user expert library.")
@click.option("--exclude", multiple=True, help="Experts to leave out (repeatable).")
@click.option("--sample", type=int, default=build_default("sample"), show_default=True, help="Target sentences scored per candidate (performance selection).")
@click.option("--agreement", type=click.Choice(AGREEMENT_MODES), default=build_default("agreement"),
              show_default=True, help="Without --dev, how experts are scored by agreement with each other on the "
              "sampled texts (vote: majority per document; vote_all: majority of all experts that speak; "
              "vote_coverage: vote x share of your labels used; pairwise: mean F1 against each other). On dev, "
              "vote's top 3 averaged 12.1 F1 alone, pairwise 12.3, vote_all 10.7, the best possible 12.9 "
              "(BENCHMARKS.md 'Selection criteria').")
@click.option("--seed", type=int, default=build_default("seed"), show_default=True, help="Sampling seed.")
@click.option("--threads", type=int, help="CPU threads (default: the cores available).")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Bundle directory (default: bundles/TARGET).")
@click.option("--align-threshold", type=float, default=build_default("align_threshold"), show_default=True,
              help="Show a label the merged experts never saw under their closest known name when the embedder's "
                   "similarity reaches this (your tags are kept in the output); measured on dev in BENCHMARKS.md "
                   "'Label alignment'.")
@click.option("--no-align", is_flag=True, help="Show the labels to the model exactly as given.")
@click.option("--answer-map/--no-answer-map", default=build_default("answer_map"), show_default=True,
              help="With labeled target examples (--dev or a profile's dev set), learn from them how to read the "
                   "merged model's answer types (an expert calls politicians 'person': read them as 'politician' "
                   "if that is what the examples say). On by default: over 16 P and N targets, dev F1 14.4 without it, "
                   "21.2 with it (BENCHMARKS.md 'Answer map').")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Build what a bundle.json records (its "
              "\"build\" config) or a JSON build config; options given here override it.")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print bundle.json (with stage timings) as JSON.")
def build(target, texts, labels, dev, k, selection, method, params, weighting, temperature, ensemble, quant, library, exclude,
          sample, agreement, seed, threads, out, align_threshold, no_align, answer_map, config, force, as_json):
    """Select experts for a target domain, merge them exactly, quantize, and write a bundle.

    \b
    Examples:
      samedge build --target legal
      samedge build --target my_domain.toml --k 2 --method linear --quant q4_k_m
      samedge build --labels 'drug,disease' --texts notes.txt --out bundles/clinic
      samedge build --target contracts --labels 'PER,ORG,LEGISLATION/ACT' --texts contracts.txt
      samedge build --config bundles/legal/bundle.json --out bundles/legal2   # the same bundle again
    The bundle (model.gguf, bundle.json, Modelfile) appears only when complete.
    """
    import json

    from ..build import BuildOptions
    from ..build import build as run_build
    from ..config import BuildConfig, parse_overrides, read_build_config
    from ..data.labels import parse_label_spec

    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    # The options given on the command line, as config fields; the others come from --config or the defaults.
    fields = {"target": target, "texts": list(texts), "dev": dev, "k": k, "selection": selection, "method": method,
              "weighting": weighting, "temperature": temperature, "ensemble": ensemble, "quant": quant.lower(),
              "library": library, "exclude": tuple(exclude), "sample": sample, "agreement": agreement, "seed": seed,
              "align_threshold": align_threshold, "answer_map": answer_map}
    chosen = {name: value for name, value in fields.items() if name in given}
    if labels:
        chosen["labels"] = [lab.to_dict() for lab in parse_label_spec(labels)]
    if params:
        chosen["method_params"] = parse_overrides(params)
    if no_align:
        chosen["align_threshold"] = None
    base = read_build_config(config) if config else BuildConfig()
    opts = BuildOptions.from_config(base.model_copy(update=chosen), threads=threads, force=force)
    target = opts.target
    out = out or f"bundles/{target if target and '/' not in target and not target.endswith('.toml') else 'custom'}"
    result = run_build(opts, out, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result, indent=2))
