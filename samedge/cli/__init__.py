"""The ``samedge`` command line: thin click wrappers over the Python API.

Each command lives in its own module under ``samedge/cli/`` and is imported
only when run, so ``samedge extract`` never pays for (or needs) torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__

# command name -> (module, attribute, one-line help shown in `samedge --help`)
COMMANDS = {
    "build": ("build", "build", "Select and merge experts for a target into a GGUF bundle."),
    "extract": ("extract", "extract", "Find entities in text files with a bundle (CPU, offline)."),
    "eval": ("evaluate", "eval_cmd", "Score predictions against gold: entity-level micro P/R/F1."),
    "train": ("train", "train", "Train a LoRA domain expert (or the unified baseline)."),
    "experts": ("experts", "experts", "List, show, add, remove and verify library experts."),
    "targets": ("targets", "targets", "List and show target domain profiles."),
    "base": ("base", "base", "Provision the base model (GGUF f16, HF folder) in the cache."),
    "select": ("select", "select", "Rank library experts for a target (no merge)."),
    "extract-corpus": ("corpus", "extract_corpus", "Extract a large corpus with Ray or a process pool."),
    "serve": ("serve", "serve", "A local HTTP JSON extraction service (serve extra)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, spec in COMMANDS.items() if _available(spec))

    def get_command(self, ctx, name):
        spec = COMMANDS.get(name)
        if spec is None or not _available(spec):
            return None
        module = importlib.import_module(f"samedge.cli.{spec[0]}")
        return getattr(module, spec[1])

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # user errors become one line and exit code 2
            from ..errors import UserError
            debug = ctx.obj and ctx.obj.get("debug")
            if isinstance(exc, UserError) and not debug:
                click.echo(f"error: {exc}", err=True)
                sys.exit(exc.exit_code)
            raise


def _available(spec) -> bool:
    return importlib.util.find_spec(f"samedge.cli.{spec[0]}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="samedge")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx, debug):
    """samedge: domain-adapted NER on laptops and air-gapped machines.

    \b
    Typical use:
      samedge build --target legal        # select + merge experts into a bundle
      samedge extract contract.txt        # entities with character offsets
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
