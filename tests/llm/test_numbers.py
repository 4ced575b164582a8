"""Numbers in claims and spans: normalised forms compare equal, others do not."""

from __future__ import annotations

from decimal import Decimal

from llm.numbers import unmatched, values


def test_separators_scales_and_percentages_normalise() -> None:
    assert values("1,234 and 1234") == {(Decimal(1234), False)}
    assert {v for v, _ in values("1.2 billion")} == {v for v, _ in values("1,200 million")}
    assert {v for v, _ in values("$1.2bn")} == {Decimal("1.2E9")}
    assert values("margin of 16.5%") == {(Decimal("16.5"), True)}
    assert values("16.5 per cent") == {(Decimal("16.5"), True)}
    assert {v for v, _ in values("营收3.5亿元，员工12万人")} == {Decimal("3.5E8"), Decimal("1.2E5")}


def test_a_claim_number_must_be_stated_in_the_span() -> None:
    span = "Revenue was $1,200 million in 2022, and the margin fell to 16.5%."
    assert unmatched("Revenue was 1.2 billion dollars in 2022.", span) == set()
    assert unmatched("The margin fell to 16.5 per cent.", span) == set()
    assert unmatched("The margin rose by 15%.", span) == {(Decimal(15), True)}
    assert unmatched("The company has 20 employees.", span) == {(Decimal(20), False)}
    assert unmatched("Revenue fell.", span) == set()  # no number: nothing to match


def test_dates_match_by_their_parts() -> None:
    span = "Unused leave expires on 31 March 2021."
    assert unmatched("Leave expires on 31 March 2021.", span) == set()
    assert unmatched("Leave expires on 30 March 2021.", span) == {(Decimal(30), False)}
    assert unmatched("Leave expires in 2020.", span) == {(Decimal(2020), False)}


def test_numbers_inside_words_are_not_values() -> None:
    assert values("COVID-19 and H1N1 and SmolLM2") == {(Decimal(19), False)}
