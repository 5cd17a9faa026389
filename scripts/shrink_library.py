"""Store every expert of a library at a lower LoRA rank (SVD truncation of its delta, fp16), in place.

    python scripts/shrink_library.py                            # models/experts, at SHIPPED_RANK
    python scripts/shrink_library.py --rank 4 --library my/experts

The shipped rank (samedge.library.SHIPPED_RANK) is chosen by `benchmarks/library_budget.py`
(dev F1 at each rank). Each expert is
rewritten atomically (new adapter, adapter_config.json and expert.json with fresh sha256s and
the truncation recorded under lora.truncated_from); experts already at or below the rank are left.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from samedge.library import SHIPPED_RANK, Library
    from samedge.merge.adapter import shrink_expert

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rank", type=int, default=SHIPPED_RANK, help=f"default: {SHIPPED_RANK}")
    ap.add_argument("--library", default=str(ROOT / "models" / "experts"))
    args = ap.parse_args(argv)

    library = Library.open(args.library, include_shipped=False)
    for expert in library.experts():
        if expert.manifest["lora"]["r"] <= args.rank:
            print(f"{expert.name}: rank {expert.manifest['lora']['r']}, left as is")
            continue
        manifest = shrink_expert(expert, args.rank, expert.path, force=True)
        t = manifest["lora"]["truncated_from"]
        print(f"{expert.name}: rank {t['r']} -> {args.rank} (relative error mean {t['relative_error_mean']}, "
              f"max {t['relative_error_max']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
