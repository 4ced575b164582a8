"""Tests for the PPTX parser, on decks built with python-pptx and on real files."""

from __future__ import annotations

import io
from pathlib import Path

import pptx
import pytest
from pptx.util import Inches

from data.types import PageSpan, Section
from ingest.errors import CorruptError, NoTextError
from ingest.parsers.pptx import NOTES_HEADING, parse

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _deck() -> bytes:
    """Slide 1: title, body, table, group with nested group, notes; 2: blank; 3: untitled."""
    prs = pptx.Presentation()
    first = prs.slides.add_slide(prs.slide_layouts[1])  # title and content
    first.shapes.title.text = "Quarterly review"
    first.placeholders[1].text_frame.text = "Revenue grew\nCosts fell"
    rows = first.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Region", (0, 1): "Sales", (1, 0): "North", (1, 1): "42"}.items():
        rows.cell(r, c).text = text
    group = first.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(0), Inches(0), Inches(1), Inches(1)).text = "grouped one"
    inner = group.shapes.add_group_shape()
    inner.shapes.add_textbox(Inches(1), Inches(1), Inches(1), Inches(1)).text = "nested two"
    first.notes_slide.notes_text_frame.text = "Say the numbers slowly."
    prs.slides.add_slide(prs.slide_layouts[6])  # blank: no text at all
    third = prs.slides.add_slide(prs.slide_layouts[6])
    third.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text = "Untitled words"
    buffer = io.BytesIO()
    prs.save(buffer)
    return buffer.getvalue()


def test_slides_titles_tables_groups_notes_and_pages() -> None:
    parsed = parse(_deck())
    text = parsed.text
    assert text == (
        "Quarterly review\n\nRevenue grew\nCosts fell\n\nRegion | Sales\nNorth | 42\n\n"
        "grouped one\n\nnested two\n\nSay the numbers slowly.\n\nUntitled words"
    )
    notes_at = text.index("Say the")
    assert parsed.sections == [
        Section(0, ("Quarterly review",)),
        Section(notes_at, ("Quarterly review", NOTES_HEADING)),
        Section(text.index("Untitled"), ("Slide 3",)),
    ]
    # One page per slide with text, numbered as the slide; the blank slide 2 has none.
    assert parsed.page_count == 3
    assert parsed.pages == [
        PageSpan(1, 0, notes_at + len("Say the numbers slowly.")),
        PageSpan(3, text.index("Untitled"), len(text)),
    ]


def test_real_table_deck() -> None:
    parsed = parse((FIXTURES / "pptx" / "fake-power-point-table.pptx").read_bytes())
    assert "Column 1 | Column 2 | Column 3\nRed | Green | Blue" in parsed.text
    assert parsed.sections[0] == Section(0, ("A Slide with a Table",))


def test_real_nested_groups_give_every_letter_once() -> None:
    parsed = parse((FIXTURES / "pptx" / "group-shapes-nested.pptx").read_bytes())
    assert sorted(parsed.text.split()) == list("ABCDEFGHIJ")


def test_real_speaker_notes() -> None:
    parsed = parse((FIXTURES / "pptx" / "sld-notes.pptx").read_bytes())
    assert parsed.text == "Notes"
    assert parsed.sections[-1].heading_path[-1] == NOTES_HEADING


def test_deck_without_text_and_not_a_deck() -> None:
    with pytest.raises(NoTextError):
        parse((FIXTURES / "other" / "minimal.pptx").read_bytes())
    with pytest.raises(CorruptError, match="not a zip"):
        parse(b"not a deck at all")
    with pytest.raises(CorruptError, match="legacy PowerPoint"):
        parse((FIXTURES / "other" / "fake.doc").read_bytes())
