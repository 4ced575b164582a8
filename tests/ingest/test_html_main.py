"""Tests for HTML main-content extraction: boilerplate goes, content, tables and lists stay."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from data.types import Section
from ingest.parsers.html import decode_html, extract, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "html"
STORY = "The council approved the new harbour budget after a long debate on Tuesday evening."


def _words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in re.findall(r"\w+", text))


def word_scores(reference: str, extracted: str) -> tuple[float, float]:
    """(recall, precision) of the extracted words against the reference's, as multisets."""
    ref, out = _words(reference), _words(extracted)
    common = sum((ref & out).values())
    return common / sum(ref.values()), common / sum(out.values())


def test_nav_header_footer_go_article_and_table_stay() -> None:
    page = f"""<html><head><title>News</title></head><body>
    <header><a href="/">Logo</a><nav><ul><li><a href="/a">Home</a></li>
    <li><a href="/b">Sport</a></li></ul></nav></header>
    <article><h1>Harbour budget</h1><p>{STORY}</p>
    <table><tr><th>Item</th><th>Cost</th></tr><tr><td>Pier</td><td>4.2 M</td></tr></table>
    <ul><li>Dredging in spring</li><li>New lights</li></ul>
    <footer>Filed by the city desk</footer></article>
    <aside><h2>Most read</h2><p>Something else entirely happened somewhere.</p></aside>
    <footer><p>Copyright 2024 The Paper</p><a href="/privacy">Privacy</a></footer>
    </body></html>""".encode()
    doc = parse(page)
    assert doc.text == (
        "News\n\nHarbour budget\n\n" + STORY + "\n\nItem | Cost\nPier | 4.2 M\n\n"
        "Dredging in spring\n\nNew lights\n\nFiled by the city desk"
    )
    assert doc.sections == [Section(6, ("Harbour budget",))]


def test_class_named_chrome_and_link_lists_go_without_semantic_tags() -> None:
    links = "".join(f'<li><a href="/{i}">Section {i}</a></li>' for i in range(8))
    page = f"""<body><div id="top-menu"><a href="/">Home</a> <a href="/about">About</a></div>
    <div class="breadcrumbs">Home &gt; News</div>
    <div id="left-sidebar"><h3>Archive</h3><p>Older posts by month.</p></div>
    <div id="page"><h1>Budget</h1><p>{STORY}</p><p>{STORY}</p>
    <div class="share-buttons">Share on social media</div>
    <ul>{links}</ul><ul><li>Plain item one</li><li>Plain item two</li></ul></div>
    <div class="cookie-banner">We use cookies.</div></body>""".encode()
    assert parse(page).text == (f"Budget\n\n{STORY}\n\n{STORY}\n\nPlain item one\n\nPlain item two")


def test_unique_main_is_the_content_and_a_header_h1_is_kept() -> None:
    page = f"""<body><header><h1>Annual report</h1><a href="/">Site</a></header>
    <div><p>An unmarked promo block that sits beside the content.</p></div>
    <main><h2>Summary</h2><p>{STORY}</p><p>{STORY}</p></main></body>""".encode()
    doc = parse(page)
    assert doc.text == f"Annual report\n\nSummary\n\n{STORY}\n\n{STORY}"
    assert [s.heading_path for s in doc.sections] == [
        ("Annual report",),
        ("Annual report", "Summary"),
    ]


def test_a_page_of_links_is_kept_whole() -> None:
    links = "".join(f'<li><a href="/{i}">Chapter {i}</a></li>' for i in range(30))
    text = parse(f"<body><ul>{links}</ul></body>".encode()).text
    assert text.split("\n\n") == [f"Chapter {i}" for i in range(30)]


def test_the_bulk_of_the_text_is_never_boilerplate() -> None:
    page = f'<body><div class="sidebar-left"><p>{STORY}</p><p>{STORY}</p></div><p>x</p></body>'
    assert parse(page.encode()).text == f"{STORY}\n\n{STORY}\n\nx"


@pytest.mark.parametrize(
    ("name", "recall", "precision"),
    [("wiki-style", 0.98, 0.99), ("example-with-scripts", 0.99, 0.99)],
)
def test_word_recall_and_precision_against_reference(
    name: str, recall: float, precision: float
) -> None:
    reference = (FIXTURES / f"{name}.ref.txt").read_text()
    text = decode_html((FIXTURES / f"{name}.html").read_bytes())
    main = word_scores(reference, extract(text).text)
    whole = word_scores(reference, extract(text, main_only=False).text)
    assert main[0] >= recall and main[1] >= precision
    assert whole[1] < main[1]  # the whole page carries boilerplate the reference lacks


def test_wiki_style_page_keeps_sections_infobox_and_tables() -> None:
    doc = parse((FIXTURES / "wiki-style.html").read_bytes())
    for gone in ("Jump to content", "Main menu", "[edit]", "Categories", "Terms of Use",
                 "Please donate", "Lighthouse of Skarv", "From Wikipedia"):  # fmt: skip
        assert gone not in doc.text
    assert "Height | 31 m" in doc.text
    assert "Keeper | From | To\nAnders Holm | 1874 | 1901" in doc.text
    assert [s.heading_path[-1] for s in doc.sections] == [
        "Harbour Lighthouse", "History", "Construction", "Museum", "See also", "References",
    ]  # fmt: skip
