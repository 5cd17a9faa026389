"""``samedge targets list|show``."""

import json

import click


@click.group("targets")
def targets():
    """Target domain profiles: shipped ones and your own TOML files."""


@targets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json):
    """List the shipped target profiles."""
    from ..targets import list_targets
    items = [t.summary() for t in list_targets()]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for t in items:
        click.echo(f"{t['name']:<12} {len(t['labels']):>2} labels  {t['texts']:>3} texts  {t['description']}")


@targets.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_cmd(name, as_json):
    """Show a target profile: NAME is a shipped profile or a path to a TOML file."""
    from ..targets import load_target
    t = load_target(name)
    if as_json:
        click.echo(json.dumps(t.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{t.name}: {t.description}")
    click.echo("labels:")
    for lab in t.labels:
        shown = lab.tag if lab.tag == lab.name else f"{lab.tag} (prompt: {lab.name})"
        click.echo(f"  {shown}: {lab.description}")
    if t.dev:
        click.echo(f"dev: {t.dev}")
    click.echo(f"sample texts: {len(t.texts)}")
    for text in t.texts[:3]:
        click.echo(f"  - {text}")
