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


def test_agreement_criteria_score_each_expert_by_every_criterion():
    """The agreement study's criteria, from the experts' predictions alone: similarity as given, F1 on
    the labeled sample, and each agreement mode on the unlabeled one."""
    from benchmarks.accuracy import agreement_criteria
    from samedge.config import AGREEMENT_MODES

    def doc(i, *ents):
        return {"id": str(i), "text": "Ann met Bob in Rome.",
                "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in ents]}

    ann, bob, rome = (0, 3, "person"), (8, 11, "person"), (15, 19, "location")
    gold = [doc(0, ann, rome)]
    labeled = {"a": [doc(0, ann, rome)], "b": [doc(0, bob)], "c": [doc(0)]}
    unlabeled = {"a": [doc(1, ann), doc(2, rome)], "b": [doc(1, ann), doc(2, bob)], "c": [doc(1), doc(2)]}
    got = agreement_criteria(unlabeled, labeled, gold, 2, {"a": 0.5, "b": 0.7, "c": 0.1})
    assert set(got) == {"similarity", "labeled F1", *AGREEMENT_MODES}
    assert got["similarity"] == {"a": 0.5, "b": 0.7, "c": 0.1}
    assert got["labeled F1"] == {"a": 100.0, "b": 0.0, "c": 0.0}
    assert all(got[mode]["c"] == 0.0 for mode in AGREEMENT_MODES), "an expert that finds nothing scores 0"
    assert got["pairwise"]["a"] == got["pairwise"]["b"] > 0


def test_answer_map_study_reads_answers_through_a_map_and_counts_exactly():
    from benchmarks.answer_map import counts, f1, read, spacy_rule

    default = {"person": "PER", "organization": "ORG"}
    preds = [[(0, 3, "person"), (4, 7, "organization"), (8, 9, "misc")]]
    gold = [[(0, 3, "politician"), (4, 7, "ORG")]]
    assert read(preds, {}, default) == [[(0, 3, "PER"), (4, 7, "ORG")]], "unknown types are dropped"
    mapping = spacy_rule(preds, gold, default)
    assert mapping == {"person": "politician"}
    rows = counts(read(preds, mapping, default), gold)
    assert rows == [[2, 0, 0]] and f1(rows) == 100.0
