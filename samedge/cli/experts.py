"""``samedge experts list|show|add|remove|verify``."""

import json

import click

library_option = click.option("--library", type=click.Path(file_okay=False), envvar="SAMEDGE_LIBRARY",
                              help="A user library directory (default: $SAMEDGE_LIBRARY, then the shipped models/experts).")


@click.group("experts")
def experts():
    """The expert library: LoRA adapters with manifests, checked by sha256."""


@experts.command("list")
@library_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(library, as_json):
    """Name, dev F1, size, training-data licence and labels of every expert."""
    from ..data.catalog import is_non_commercial
    from ..library.library import Library

    rows = [e.summary() for e in Library.open(library).experts(verify=False)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no experts")
        return
    licences = {r["name"]: licence_cell(r["licence"], is_non_commercial(r["licence"])) for r in rows}
    width = max(len("licence"), *map(len, licences.values()))
    click.echo(f"{'name':<22}{'dev F1':>7}{'size':>9}  {'licence':<{width}}  labels")
    for r in rows:
        f1 = "-" if r["dev_f1"] is None else f"{r['dev_f1']:.1f}"
        click.echo(f"{r['name']:<22}{f1:>7}{r['size_bytes'] / 1e6:>7.1f}MB  {licences[r['name']]:<{width}}  "
                   f"{', '.join(r['labels'])}")


def licence_cell(licence: str, non_commercial: bool) -> str:
    """"-" for manifests written before licences were recorded."""
    if not licence:
        return "-"
    return f"{licence} (non-commercial)" if non_commercial else licence


@experts.command("show")
@click.argument("name")
@library_option
def show_cmd(name, library):
    """Print an expert's manifest (the centroid vector shortened)."""
    from ..library.library import Library

    manifest = dict(Library.open(library).get(name).manifest)
    if manifest.get("centroid"):
        manifest["centroid"] = dict(manifest["centroid"], vector=f"[{len(manifest['centroid']['vector'])} floats]")
    click.echo(json.dumps(manifest, indent=2))


@experts.command("add")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--name", help="Name in the library (default: the manifest's).")
@click.option("--force", is_flag=True, help="Replace an expert of the same name.")
@library_option
def add_cmd(folder, name, force, library):
    """Copy an expert folder into the library after checking base, shapes, NaN/Inf and hashes."""
    from ..library.library import Library

    e = Library.open(library).add(folder, name=name, force=force)
    click.echo(f"added {e.name} to {e.path.parent}")


@experts.command("remove")
@click.argument("name")
@library_option
def remove_cmd(name, library):
    """Take an expert out of the library (atomically)."""
    from ..library.library import Library

    path = Library.open(library).remove(name)
    click.echo(f"removed {name} ({path})")


@experts.command("verify")
@library_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_cmd(library, as_json):
    """Re-hash every expert's files against its manifest. Exit code 2 on any mismatch."""
    from ..errors import IntegrityError
    from ..library.library import Library

    results = Library.open(library).verify()
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for name, problems in results.items():
            click.echo(f"{name}: {'ok' if not problems else '; '.join(problems)}")
    bad = [n for n, p in results.items() if p]
    if bad:
        raise IntegrityError(f"{len(bad)} of {len(results)} experts failed verification: {', '.join(bad)}")


@experts.command("centroid")
@click.argument("name")
@click.option("--texts", type=click.Path(dir_okay=False), help="Domain texts, one per line "
              "(default: the expert's catalog domain's training texts).")
@library_option
def centroid_cmd(name, texts, library):
    """(Re)compute an expert's domain centroid with the shipped embedder."""
    from ..data.decode import read_text
    from ..library.experts import catalog_texts, set_centroid
    from ..library.library import Library

    expert = Library.open(library).get(name)
    lines = ([t.strip() for t in read_text(texts).splitlines() if t.strip()] if texts
             else catalog_texts(expert.manifest["domain"]))
    set_centroid(expert, lines)
    click.echo(f"{name}: centroid from {min(len(lines), 256)} texts")
