"""$SAMEDGE_HOME folders for tests and benchmarks (not shipped: production code has one home)."""

from __future__ import annotations

from pathlib import Path

from samedge.files import samedge_home


def home_sharing_model_caches(home: Path) -> Path:
    """A $SAMEDGE_HOME at ``home`` whose base, id and LoRA caches are this one's (symlinked): builds
    there reuse the provisioned models but keep their own "last bundle"."""
    real = samedge_home()
    home.mkdir(parents=True, exist_ok=True)
    if real.resolve() != home.resolve():
        for name in ("base", "ids", "lora"):
            (real / name).mkdir(parents=True, exist_ok=True)
            link = home / name
            if not link.exists():
                link.symlink_to(real / name, target_is_directory=True)
    return home
