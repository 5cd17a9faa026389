"""The benchmarks' written conclusions are computed from their tables, never typed in."""

from __future__ import annotations

from benchmarks.accuracy import ROWS, _compare
from benchmarks.recipe_ablation import EVALS, findings


def _row(*f1s):
    assert len(f1s) == len(EVALS)
    return {"scores": {e: {"f1": f} for e, f in zip(EVALS, f1s)}}


def test_recipe_findings_compare_each_variant_with_plain_at_the_same_budget():
    rows = {"shipped": _row(60, 0, 47, 8, 4), "plain": _row(50, 0, 40, 8, 0),
            "renames+subsets": _row(48, 30, 42, 11, 5), "shipped+renames+subsets": _row(55, 10, 45, 8, 8)}
    lines = findings(rows)
    # Scratch variants are compared with plain, warm starts with the shipped expert.
    assert "- renames+subsets against plain: transfer +10.0, renamed +30.0, in-domain -2.0." in lines
    assert "- shipped+renames+subsets against shipped: transfer +3.0, renamed +10.0, in-domain -5.0." in lines
    # The best transfer is named, and the default recipe (train_defaults.toml: plain) is said to be plain's.
    assert lines[-1].startswith("- Best transfer: renames+subsets.")
    assert "is the recipe of shipped / plain." in lines[-1]


def test_recipe_findings_without_a_reference_row_say_only_the_best():
    lines = findings({"renames+subsets": _row(48, 30, 42, 11, 5)})
    assert len(lines) == 1 and lines[0].startswith("- Best transfer: renames+subsets.")


def test_accuracy_comparisons_only_for_measured_rows():
    averages = {"sam_default": 16.0, "sam": 17.8, "spacy": 17.4, "best_single": None}
    lines = _compare(averages, ("sam_default", "sam"), ("spacy", "best_single"))
    assert lines == [f"- {ROWS['sam_default'][0]} 16.0 vs {ROWS['spacy'][0]} 17.4: not above.",
                     f"- {ROWS['sam'][0]} 17.8 vs {ROWS['spacy'][0]} 17.4: above."]
