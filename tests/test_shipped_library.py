"""The shipped expert library (models/experts): the domains it promises, the rank it is stored at,
every file's sha256, and the 100 MB budget of models/ (BENCHMARKS.md "Library budget")."""

from __future__ import annotations

from samedge.data.catalog import DOMAINS, is_non_commercial
from samedge.data.protocols import ALL, SHIPPED
from samedge.library import MODELS_BUDGET_BYTES, SHIPPED_RANK, Library, models_dir, shipped_library


def _shipped():
    return Library.open(include_shipped=True, library=None).experts(verify=True)  # sha256-checked


def test_the_shipped_library_is_the_promised_domains_at_the_shipped_rank(monkeypatch):
    monkeypatch.delenv("SAMEDGE_LIBRARY", raising=False)
    experts = _shipped()
    assert sorted(e.name for e in experts) == sorted(SHIPPED)
    assert set(SHIPPED) <= set(ALL)
    for expert in experts:
        lora = expert.manifest["lora"]
        assert lora["r"] == SHIPPED_RANK, expert.name
        # stored by truncation of an expert trained at the full recipe, never trained short
        assert lora["truncated_from"]["r"] > SHIPPED_RANK, expert.name
        assert expert.manifest["training"]["steps"] >= 300 or expert.manifest["training"]["examples"] * 10 <= \
            expert.manifest["training"]["steps"] * expert.manifest["training"]["hyperparameters"]["batch_size"], expert.name
        assert expert.manifest["licence"] == DOMAINS[expert.manifest["domain"]].licence, expert.name


def test_models_fit_the_budget():
    total = sum(p.stat().st_size for p in models_dir().rglob("*") if p.is_file())
    assert total <= MODELS_BUDGET_BYTES, f"models/ holds {total / 1e6:.1f} MB"
    assert shipped_library().parent == models_dir()


def test_non_commercial_licences_are_marked():
    licences = {d: DOMAINS[d].licence for d in SHIPPED}
    assert is_non_commercial(licences["finer_ord"]) and is_non_commercial(licences["hipe2022_en"])
    assert not is_non_commercial(licences["linnaeus"])
