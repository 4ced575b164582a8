"""Tests for the HTML parser: readable block text, heading sections, encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.types import ParsedDocument, Section
from ingest.errors import NoTextError
from ingest.parsers.html import parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "html"

PAGE = b"""<!DOCTYPE html>
<html><head><title>The  Page</title><style>p { color: red }</style>
<script>var hidden = "no";</script></head>
<body>
<nav>Home <a href="/">Back</a></nav>
<h1>Main <em>title</em></h1>
<p>First   paragraph
   spans lines.<br>After a break.</p>
tail text
<h2>Details</h2>
<table><caption>Prices</caption>
<tr><th>Item</th><th>Cost</th></tr>
<tr><td>Tea</td><td><p>1.50</p><p>EUR</p></td></tr>
<tr><td></td><td></td></tr>
</table>
<pre>  code
    indented</pre>
<h3>Deeper</h3><noscript>enable js</noscript><template><p>tpl</p></template>
<h2>Other</h2><ul><li>one</li><li>two</li></ul>
</body></html>
"""
PAGE_TEXT = (
    "The Page\n\n"
    "Main title\n\n"
    "First paragraph spans lines.\nAfter a break.\n\n"
    "tail text\n\n"
    "Details\n\n"
    "Prices\n\n"
    "Item | Cost\nTea | 1.50 EUR\n\n"
    "  code\n    indented\n\n"
    "Deeper\n\n"
    "Other\n\n"
    "one\n\n"
    "two"
)


def assert_sections_at_headings(doc: ParsedDocument) -> None:
    """Each section starts exactly where the text of its innermost heading begins."""
    for section in doc.sections:
        title = section.heading_path[-1]
        assert doc.text[section.start : section.start + len(title)] == title


def test_page_text_and_nested_sections() -> None:
    doc = parse(PAGE)
    assert doc.text == PAGE_TEXT
    assert doc.sections == [
        Section(PAGE_TEXT.index("Main title"), ("Main title",)),
        Section(PAGE_TEXT.index("Details"), ("Main title", "Details")),
        Section(PAGE_TEXT.index("Deeper"), ("Main title", "Details", "Deeper")),
        Section(PAGE_TEXT.index("Other"), ("Main title", "Other")),
    ]
    assert_sections_at_headings(doc)
    assert doc.pages == [] and doc.page_count is None


def test_hidden_elements_comments_and_entities() -> None:
    html = b'<p>a&nbsp;&amp;&nbsp;b</p><p hidden>secret</p><div style="display: none">x</div>'
    assert parse(html + b"<p>x<!-- note -->y</p>").text == "a & b\n\nxy"


def test_layout_table_is_walked_as_blocks() -> None:
    html = b"<table><tr><td><h1>Head</h1><p>Body</p></td><td><table><tr><td>a</td><td>b</td>"
    doc = parse(html + b"</tr></table></td></tr></table>")
    assert doc.text == "Head\n\nBody\n\na | b"
    assert doc.sections == [Section(0, ("Head",))]


def test_meta_charset_is_honoured() -> None:
    html = '<meta charset="windows-1251"><p>Привет мир</p>'.encode("cp1251")
    assert parse(html).text == "Привет мир"


def test_wrong_meta_charset_falls_back_to_detection() -> None:
    html = '<meta charset="utf-8"><p>Grüße aus Köln, schöne Straße</p>'.encode("cp1252")
    assert parse(html).text == "Grüße aus Köln, schöne Straße"


def test_bom_wins_over_meta_charset() -> None:
    assert parse(b'\xef\xbb\xbf<meta charset="iso-8859-1"><p>Gr\xc3\xbc\xc3\x9fe</p>').text == (
        "Grüße"
    )


def test_cp1252_fixture_without_declaration() -> None:
    doc = parse((FIXTURES / "fake-html-cp1252.html").read_bytes())
    assert doc.text.startswith("My First Heading\n\nMy first paragraph.\n\n")
    assert "L'été était très chaud cette année." in doc.text
    assert "Der Preis betrug 15,50 €." in doc.text
    assert doc.sections == [Section(0, ("My First Heading",))]


def test_utf16_fixture() -> None:
    doc = parse((FIXTURES / "example-steelJIS-datasheet-utf-16.html").read_bytes())
    assert doc.text.startswith(
        "SNB22-3 - SteelJIS - Datasheet, Chemical composition, Standards and Properties\n\n"
    )
    assert "Chemical composition 成分" in doc.text
    assert "日本語" not in doc.text  # the language menu is navigation
    site, grade = "SteelJIS: Japanese Steels and Alloys", "SNB22-3 Chemical composition"
    assert [s.heading_path for s in doc.sections][:2] == [
        (site,),
        (site, f"{grade}, standards and properties"),
    ]
    assert_sections_at_headings(doc)


def test_site_header_and_footer_outside_body_are_dropped() -> None:
    doc = parse((FIXTURES / "fake-html-with-footer-and-header.html").read_bytes())
    assert doc.text == "My First Heading\n\nMy first paragraph."
    assert doc.sections == [Section(0, ("My First Heading",))]


def test_deep_nesting_does_not_recurse() -> None:
    html = b"<div>" * 5000 + b"deep" + b"</div>" * 5000
    assert parse(html).text == "deep"


@pytest.mark.parametrize(
    "html",
    [b"", b"<html><head><style>p{}</style></head><body> </body></html>", b"<script>x</script>"],
)
def test_no_visible_text_raises(html: bytes) -> None:
    with pytest.raises(NoTextError):
        parse(html)
