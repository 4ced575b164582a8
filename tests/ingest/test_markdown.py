"""Tests for the markdown parser: source text kept verbatim, sections from headings."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.types import ParsedDocument, Section
from ingest.errors import NoTextError
from ingest.parsers.markdown import parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "text"


def assert_sections_at_heading_lines(doc: ParsedDocument, heading_lines: list[str]) -> None:
    """Each section starts at the start of its heading's line (an ATX `#` marker included)."""
    assert len(doc.sections) == len(heading_lines)
    for section, line in zip(doc.sections, heading_lines, strict=True):
        assert section.start == 0 or doc.text[section.start - 1] == "\n"
        assert doc.text[section.start :].startswith(line)


def test_atx_and_setext_headings_nest_by_level() -> None:
    source = (
        "# Guide #\n"
        "Intro.\n\n"
        "Install\n-------\n"
        "Run it.\n\n"
        "### Linux\n"
        "apt.\n\n"
        "Usage\n=====\n"
        "Use it.\n"
    )
    doc = parse(source.encode())
    assert doc.text == source
    assert doc.sections == [
        Section(0, ("Guide",)),
        Section(18, ("Guide", "Install")),
        Section(43, ("Guide", "Install", "Linux")),
        Section(59, ("Usage",)),
    ]
    assert_sections_at_heading_lines(
        doc, ["# Guide #\n", "Install\n-------\n", "### Linux\n", "Usage\n=====\n"]
    )
    assert doc.pages == [] and doc.page_count is None


def test_headings_in_code_fences_are_not_headings() -> None:
    source = "# Real\n\n```bash\n# not a heading\n```\n\n    # indented code\n\n## Also real\n"
    doc = parse(source.encode())
    assert doc.sections == [
        Section(0, ("Real",)),
        Section(source.index("## Also real"), ("Real", "Also real")),
    ]
    assert_sections_at_heading_lines(doc, ["# Real\n", "## Also real\n"])


def test_heading_markup_is_dropped_from_the_path() -> None:
    source = "Text\n\n## The `run` *command* [docs](http://x)\n\n> # Quoted\n"
    doc = parse(source.encode())
    assert doc.sections == [
        Section(6, ("The run command docs",)),
        Section(source.index("> # Quoted"), ("Quoted",)),
    ]
    assert_sections_at_heading_lines(
        doc, ["## The `run` *command* [docs](http://x)\n", "> # Quoted\n"]
    )


def test_front_matter_is_kept_but_not_a_heading() -> None:
    source = "---\ntitle: Notes\n---\n# First\nbody\n"
    doc = parse(source.encode())
    assert doc.text == source
    assert doc.sections == [Section(21, ("First",))]
    assert_sections_at_heading_lines(doc, ["# First\n"])


def test_crlf_and_latin1_are_normalised() -> None:
    doc = parse("# Über\r\n\r\nText\r\n".encode("cp1252"))
    assert doc.text == "# Über\n\nText\n"
    assert doc.sections == [Section(0, ("Über",))]
    assert_sections_at_heading_lines(doc, ["# Über\n"])


def test_non_utf8_fixture() -> None:
    doc = parse((FIXTURES / "umlauts-non-utf8.md").read_bytes())
    assert doc.text == "## können\n\nkönnen\n\näöüß\n"
    assert doc.sections == [Section(0, ("können",))]
    assert_sections_at_heading_lines(doc, ["## können\n"])


def test_no_headings_gives_no_sections() -> None:
    assert parse(b"| a | b |\n|---|---|\n| 1 | 2 |\n").sections == []


@pytest.mark.parametrize("data", [b"", b" \n\t\n"])
def test_empty_raises_no_text(data: bytes) -> None:
    with pytest.raises(NoTextError):
        parse(data)
