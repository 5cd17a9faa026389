"""Rebuild the shipped expert library (and the unified baselines) with one command.

    python scripts/train_library.py                      # the shipped library, into models/experts/
    python scripts/train_library.py --only wlp2020 --out runs/library   # any of the 24 domains
    python scripts/train_library.py --only conll2003 --max-steps 300
    python scripts/train_library.py --unified P          # the protocol-P unified baseline (N likewise)
    python scripts/train_library.py --unified L --without conll2003   # protocol L: all domains but one

Each expert is trained with `samedge.train` on its shared domain's train split
(jnlpba: its dev split minus a held-out tenth). Finished experts are skipped;
an interrupted one resumes from its last checkpoint. The step budget is
recorded in each expert's manifest and in BENCHMARKS.md. Each finished expert is then
stored at samedge.library.SHIPPED_RANK (SVD truncation; `--keep-rank` keeps it as trained).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samedge.data.protocols import ALL as ALL_DOMAINS, N_SOURCES, P_SOURCES, P_TARGETS, SHIPPED  # noqa: E402,F401

# Domains whose label lists alone take most of train_defaults.toml's 320 tokens (wlp2020: 18
# types, snips2017: 39): their examples run to about 550 tokens (99th percentile), so they train
# at 576 unless --set max_length says otherwise. At 320 every example would be left out.
LONG_PROMPT_MAX_LENGTH = {"wlp2020": 576, "snips2017": 576}


def main(argv=None) -> int:
    from samedge.library import SHIPPED_RANK, load_expert
    from samedge.merge.adapter import shrink_expert
    from samedge.train import catalog_source, load_config, parse_overrides, train

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "models" / "experts"))
    ap.add_argument("--only", nargs="*", choices=ALL_DOMAINS, metavar="DOMAIN",
                    help="domains to train (default: the shipped library's)")
    ap.add_argument("--unified", choices=["P", "N", "L"], help="train the unified baseline of a protocol instead")
    ap.add_argument("--without", help="protocol L: the held-out domain")
    ap.add_argument("--unified-out", default=str(ROOT / "runs" / "unified"))
    ap.add_argument("--max-steps", type=int, help="steps per expert (default: train_defaults.toml)")
    ap.add_argument("--set", nargs="*", default=[], help="other overrides, key=value")
    ap.add_argument("--init-from", help="a library folder: each expert starts from its namesake there "
                    "(a warm start, e.g. to teach shipped experts a new recipe in fewer steps)")
    ap.add_argument("--keep-rank", action="store_true",
                    help=f"store experts at the trained rank, not at the shipped rank {SHIPPED_RANK}")
    args = ap.parse_args(argv)

    overrides = parse_overrides(args.set)
    if args.max_steps:
        overrides["max_steps"] = args.max_steps

    def config_for(domains) -> dict:
        """The training config, with max_length raised for long-prompt domains unless --set gave one."""
        long = [LONG_PROMPT_MAX_LENGTH[d] for d in domains if d in LONG_PROMPT_MAX_LENGTH]
        if long and "max_length" not in overrides:
            return load_config(overrides={**overrides, "max_length": max(long)})
        return load_config(overrides=overrides)

    config_for([])  # a bad --set fails here, before any training
    if args.unified:
        if args.unified == "L" and args.without not in ALL_DOMAINS:
            ap.error(f"--unified L needs --without DOMAIN, one of {', '.join(ALL_DOMAINS)}")
        # Same total budget as the experts it stands for: max_steps per source domain.
        domains = {"P": P_SOURCES, "N": N_SOURCES}.get(args.unified) or [d for d in ALL_DOMAINS if d != args.without]
        name = f"unified_{args.unified}" if args.unified != "L" else f"unified_L_{args.without}"
        out = Path(args.unified_out) / name
        if (out / "expert.json").exists():
            print(f"{out} exists, skipping")
            return 0
        train([catalog_source(d) for d in domains], out, name=name, config=config_for(domains), resume=True)
        return 0

    for domain in args.only or SHIPPED:
        out = Path(args.out) / domain
        if (out / "expert.json").exists():
            print(f"{domain}: done, skipping")
            continue
        started = time.time()
        init = Path(args.init_from) / domain if args.init_from else None
        manifest = train([catalog_source(domain)], out, name=domain, config=config_for([domain]), resume=True,
                         init_from=init if init is not None and (init / "expert.json").exists() else None)
        print(f"{domain}: dev {manifest['dev']} in {time.time() - started:.0f}s", flush=True)
        if not args.keep_rank and manifest["lora"]["r"] > SHIPPED_RANK:
            shrink_expert(load_expert(out), SHIPPED_RANK, out, force=True)
            print(f"{domain}: stored at rank {SHIPPED_RANK}", flush=True)
    return 0


if __name__ == "__main__":
    from samedge.errors import UserError

    try:
        sys.exit(main())
    except UserError as e:  # bad options or data: one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
