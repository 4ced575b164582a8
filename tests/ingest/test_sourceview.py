"""The passage a citation points at: its text, context, pages and heading from stored text."""

from __future__ import annotations

import pytest

from data.errors import InvalidInputError
from ingest.sourceview import CONTEXT_CHARS, MAX_PASSAGE_CHARS, clamp_width, passage_of

# Two pages joined by the parser's "\n\n"; a section starts on the second page.
TEXT = "Intro words here.\n\nResults\nRevenue grew by twelve percent."
LAYOUT = {
    "page_count": 2,
    "pages": [[1, 0, 17, "i"], [2, 19, len(TEXT), "1"]],
    "sections": [[0, ["Intro"]], [19, ["Intro", "Results"]]],
}


def test_a_passage_has_its_text_context_page_and_heading() -> None:
    start = TEXT.index("twelve")
    p = passage_of(TEXT, LAYOUT, start, start + len("twelve percent"))
    assert p.text == "twelve percent"
    assert p.before == TEXT[:start] and p.after == "."
    assert (p.page_start, p.page_end, p.page_label, p.page_count) == (2, 2, "1", 2)
    assert p.heading == "Intro > Results"
    [span] = p.spans
    assert (span.page, span.text[span.start : span.end]) == (2, "twelve percent")


def test_a_passage_over_the_page_break_names_both_pages_and_both_parts() -> None:
    start, end = TEXT.index("words"), TEXT.index("Revenue") + len("Revenue")
    p = passage_of(TEXT, LAYOUT, start, end)
    assert (p.page_start, p.page_end, p.heading) == (1, 2, "Intro")
    assert [(s.page, s.text[s.start : s.end]) for s in p.spans] == [
        (1, "words here."),
        (2, "Results\nRevenue"),
    ]


def test_context_is_bounded_and_starts_and_ends_on_whole_words() -> None:
    words = " ".join(f"w{i:04d}" for i in range(1000))
    start = words.index("w0500")
    p = passage_of(words, None, start, start + 5)
    assert p.text == "w0500"
    assert CONTEXT_CHARS - 10 <= len(p.before) <= CONTEXT_CHARS
    assert CONTEXT_CHARS - 10 <= len(p.after) <= CONTEXT_CHARS
    assert p.before.startswith("w") and p.before.endswith(" ")
    assert p.after.startswith(" ") and p.after.endswith(tuple("0123456789"))
    assert p.before.split()[0] in words.split() and p.after.split()[-1] in words.split()
    assert (p.page_start, p.page_count, p.spans, p.heading) == (None, None, [], None)


def test_an_empty_passage_is_a_point_on_its_page() -> None:
    p = passage_of(TEXT, LAYOUT, 5, 5)
    assert (p.text, p.page_start, p.page_end) == ("", 1, 1)
    assert [(s.page, s.start, s.end) for s in p.spans] == [(1, 5, 5)]  # the page, no characters


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (10, 5, "after end"),
        (0, len(TEXT) + 1, "past the document"),
        (0, MAX_PASSAGE_CHARS + 1, "at most"),
    ],
)
def test_bad_ranges_are_refused(start: int, end: int, message: str) -> None:
    text = TEXT if end <= len(TEXT) + 1 else "x" * (MAX_PASSAGE_CHARS + 10)
    with pytest.raises(InvalidInputError, match=message):
        passage_of(text, None, start, end)


def test_widths_are_clamped() -> None:
    assert [clamp_width(w) for w in (1, 200, 900, 2000, 10_000)] == [200, 200, 900, 2000, 2000]
