"""The questionnaire: Tsukuba's 22 items and 64 questions, bilingual, with stable ids."""

from __future__ import annotations

import pytest

from consent.pia import questionnaire


def test_questionnaire_has_22_items_and_64_questions() -> None:
    assert len(questionnaire.ITEMS) == 22
    assert sum(len(item.questions) for item in questionnaire.ITEMS) == 64
    assert len(questionnaire.QUESTIONS) == 64


def test_every_item_and_question_is_written_in_japanese_and_english() -> None:
    for item in questionnaire.ITEMS:
        assert item.ja and item.en and item.area in questionnaire.AREAS
        for q in item.questions:
            assert q.ja.endswith("か。"), q.id
            assert q.en.endswith("?"), q.id


def test_ids_are_numbered_in_order() -> None:
    assert [item.id for item in questionnaire.ITEMS] == [f"I{n:02d}" for n in range(1, 23)]
    for item in questionnaire.ITEMS:
        assert [q.id for q in item.questions] == [
            f"{item.id}.{n}" for n in range(1, len(item.questions) + 1)
        ]


def test_items_cover_the_three_areas_of_the_tsukuba_model() -> None:
    assert {item.area for item in questionnaire.ITEMS} == {"handling", "privacy", "security"}


def test_answers_are_normalised_and_notes_kept() -> None:
    out = questionnaire.normalise_answers({"I01.1": "yes", "I02.1": {"answer": "na", "note": "x"}})
    assert out == {"I01.1": {"answer": "yes"}, "I02.1": {"answer": "na", "note": "x"}}


@pytest.mark.parametrize(
    "raw",
    [{"I99.1": "yes"}, {"I01.1": "maybe"}, {"I01.1": 1}, {"I01.1": {"answer": "yes", "note": 3}}],
)
def test_unknown_questions_and_answers_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        questionnaire.normalise_answers(raw)
