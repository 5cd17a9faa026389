"""``samedge base``: provision the base model in the cache."""

import click


@click.command("base")
@click.option("--base", type=click.Path(file_okay=False), help="A local llama-family HF folder (default: the packaged SmolLM2).")
@click.option("--hf", is_flag=True, help="Also build the fp32 HF folder used for training (needs torch).")
@click.option("--verify", is_flag=True, help="Re-hash the cached files against base.json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def base(base, hf, verify, as_json):
    """Make the base model's GGUF f16 (and with --hf its HF folder) under $SAMEDGE_HOME.

    Idempotent: a second run reuses what exists. Every file's sha256 is in base.json.
    """
    import json

    from ..base import provision

    b = provision(base, hf=hf, verify=verify)
    info = {"name": b.name, "base_id": b.base_id, "gguf": str(b.gguf), "hf": str(b.hf) if hf else None}
    click.echo(json.dumps(info, indent=2) if as_json else "\n".join(f"{k}: {v}" for k, v in info.items() if v))
