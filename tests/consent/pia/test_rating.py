"""The rating matrix, checked against the worked examples of consent.pia.rating's docstring."""

from __future__ import annotations

import pytest

from consent.pia import rating

# financial, mental, physical, likelihood -> impact, level (the docstring's table)
WORKED_EXAMPLES = [
    (1, 1, 1, 1, 1, 1),
    (1, 2, 1, 3, 2, 2),
    (2, 4, 1, 1, 4, 2),
    (1, 1, 3, 3, 3, 3),
    (3, 2, 1, 4, 3, 4),
    (4, 4, 4, 2, 4, 3),
    (1, 1, 1, 4, 1, 2),
    (2, 2, 2, 4, 2, 3),
    (2, 3, 1, 1, 3, 1),
]


@pytest.mark.parametrize(("f", "m", "p", "likelihood", "impact", "level"), WORKED_EXAMPLES)
def test_worked_examples_of_the_docstring_hold(
    f: int, m: int, p: int, likelihood: int, impact: int, level: int
) -> None:
    assert rating.impact_level(f, m, p) == impact
    assert rating.risk_level(impact, likelihood) == level


def test_the_worked_examples_are_written_in_the_docstring() -> None:
    doc = rating.__doc__ or ""
    for f, m, p, likelihood, impact, level in WORKED_EXAMPLES:
        row = f"{f}         {m}      {p}        {likelihood}           {impact}       {level} "
        assert row in doc, row


def test_impact_is_the_worst_of_financial_mental_and_physical() -> None:
    assert rating.impact_level(1, 1, 4) == 4
    assert rating.impact_level(3, 1, 2) == 3


def test_matrix_is_symmetric_and_never_decreases_along_either_axis() -> None:
    for i in range(1, 5):
        for j in range(1, 5):
            assert rating.risk_level(i, j) == rating.risk_level(j, i)
            if i < 4:
                assert rating.risk_level(i + 1, j) >= rating.risk_level(i, j)
            if j < 4:
                assert rating.risk_level(i, j + 1) >= rating.risk_level(i, j)


def test_matrix_equals_the_product_thresholds_of_the_docstring() -> None:
    for i in range(1, 5):
        for j in range(1, 5):
            product = i * j
            expected = 1 if product <= 3 else 2 if product <= 6 else 3 if product <= 9 else 4
            assert rating.risk_level(i, j) == expected


def test_every_level_is_reached_and_corners_are_low_and_very_high() -> None:
    levels = {rating.risk_level(i, j) for i in range(1, 5) for j in range(1, 5)}
    assert levels == {1, 2, 3, 4}
    assert rating.risk_level(1, 1) == 1
    assert rating.risk_level(4, 4) == 4


def test_levels_are_named_in_japanese_and_english() -> None:
    assert [(lv.ja, lv.en) for lv in rating.LEVELS.values()] == [
        ("低", "low"),
        ("中", "medium"),
        ("高", "high"),
        ("極めて高い", "very high"),
    ]
    assert rating.level(4).label == "極めて高い (very high)"


def test_overall_rating_is_the_highest_residual_level_and_none_without_risks() -> None:
    assert rating.overall_rating([1, 3, 2]) == 3
    assert rating.overall_rating([]) is None


@pytest.mark.parametrize("bad", [0, 5, -1, True, 2.0, "3"])
def test_values_outside_one_to_four_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        rating.risk_level(bad, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rating.impact_level(1, bad, 1)  # type: ignore[arg-type]


def test_likelihood_floor_follows_the_share_of_unmet_safeguards() -> None:
    qs = ["a", "b", "c", "d"]
    assert rating.likelihood_from_answers(dict.fromkeys(qs, "yes"), qs) == 1
    assert rating.likelihood_from_answers({"a": "no", "b": "yes", "c": "yes", "d": "yes"}, qs) == 2
    assert rating.likelihood_from_answers({"a": "no", "b": "no", "c": "yes", "d": "yes"}, qs) == 3
    assert rating.likelihood_from_answers({"a": "no", "b": "no", "c": "no", "d": "yes"}, qs) == 4


def test_unanswered_questions_count_as_unmet_and_not_applicable_ones_are_left_out() -> None:
    assert rating.likelihood_from_answers({}, ["a", "b"]) == 4
    assert rating.likelihood_from_answers({"a": "na", "b": "yes"}, ["a", "b"]) == 1
    assert rating.likelihood_from_answers({"a": "na"}, ["a"]) == 1
    assert rating.likelihood_from_answers({}, []) == 1
