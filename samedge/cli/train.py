"""``samedge train``: a thin wrapper over samedge.train."""

import click


@click.command("train")
@click.option("--domain", "-d", required=True,
              help="Expert domain: a shared catalog domain (e.g. conll2003), or any name with --data. "
                   "With --unified, a comma-separated list of catalog domains.")
@click.option("--data", type=click.Path(dir_okay=False), help="Training documents (JSONL with spans, or CoNLL/BIO). "
              "Default: the catalog domain's train split.")
@click.option("--dev", type=click.Path(dir_okay=False), help="Dev documents for the final dev F1 (default: a held-out 10%).")
@click.option("--labels", help="Label set for --data, e.g. 'person,court=courts and tribunals' (default: labels found).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Output expert folder.")
@click.option("--name", help="Expert name (default: the domain).")
@click.option("--unified", is_flag=True, help="Train one adapter on the union of the --domain list (the paper's baseline), "
              "with the same per-example budget as one expert per domain.")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML file of hyperparameters (see samedge/train/train_defaults.toml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one hyperparameter, e.g. --set r=16.")
@click.option("--max-steps", type=int, help="Shortcut for --set max_steps=N.")
@click.option("--base", type=click.Path(file_okay=False), help="A local llama-family HF folder as the base (default: SmolLM2-135M-Instruct).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--force", is_flag=True, help="Replace an existing expert at --out.")
@click.option("--init-from", type=click.Path(file_okay=False, exists=True),
              help="Start from this expert's adapter (same rank and alpha) instead of a fresh one.")
@click.option("--json", "as_json", is_flag=True, help="Print the expert manifest as JSON.")
def train(domain, data, dev, labels, out, name, unified, config, overrides, max_steps, base, resume, force, init_from, as_json):
    """Train a LoRA domain expert (PEFT SFT, loss on answer tokens only).

    \b
    Examples:
      samedge train --domain conll2003 --out experts/conll2003
      samedge train --domain contracts --data my.jsonl --out experts/contracts
      samedge train --domain conll2003,wnut17 --unified --out runs/unified
    Runs on CUDA (bf16) when present, else CPU (fp32); works under `accelerate launch`.
    """
    import json

    from ..data.labels import Label, parse_label_spec
    from ..errors import UserError
    from ..train.examples import catalog_source, file_source
    from ..train.trainer import load_config, parse_overrides
    from ..train.trainer import train as run_train

    settings = parse_overrides(overrides)
    if max_steps is not None:
        settings["max_steps"] = max_steps
    cfg = load_config(config, settings)
    domains = [d.strip() for d in domain.split(",") if d.strip()]
    if unified:
        if data:
            raise UserError("--unified trains on catalog domains; it cannot be combined with --data")
        sources = [catalog_source(d) for d in domains]
    elif len(domains) != 1:
        raise UserError("several domains need --unified")
    elif data:
        # Training speaks readable names (file_source relabels the data with them), so the labels are tagged so too.
        named = [Label(lab.name, lab.description) for lab in parse_label_spec(labels)] if labels else None
        sources = [file_source(domains[0], data, dev, named)]
    else:
        sources = [catalog_source(domains[0])]
    manifest = run_train(sources, out, name=name or ("unified" if unified else domains[0]), config=cfg,
                         base=base, resume=resume, force=force, init_from=init_from)
    if manifest is None:  # a non-main accelerate process
        return
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
    else:
        t = manifest["training"]
        click.echo(f"wrote {out}: {t['steps']} steps in {t['seconds']:.0f}s, dev F1 {manifest['dev']}")
