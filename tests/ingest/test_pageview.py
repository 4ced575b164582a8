"""Document offsets → PDFium characters → line boxes, and page rendering, on real PDFs
(tests/fixtures/pdf and PDFs made here with PDFium)."""

from __future__ import annotations

import ctypes
import io
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from data.errors import NotRenderableError, UnavailableError
from data.types import Box, PageSpanText
from ingest.chunkstore import layout_of
from ingest.pageview import merge_runs, passage_boxes, render_page
from ingest.parsers.pdf import parse
from ingest.sourceview import SourceViewer, ViewerConfig, passage_of
from ingest.textalign import align, raw_indices
from tests.helpers import make_pdf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"
TWO_PAGES = [
    ["Quarterly report", "Revenue in Asia grew by"],
    ["twelve percent in the third quarter.", "Costs were flat."],
]


def test_align_maps_characters_across_spacing_the_parser_changed() -> None:
    stored = "ab c\nd"
    raw = list("ab  c\r\nd")
    assert align(stored, raw) == [0, 1, -1, 4, -1, 7]


def test_align_skips_pdfiums_soft_hyphen_mark_and_controls() -> None:
    stored = "infor\nmation"
    raw = list("infor\x02\r\nma\x00tion")
    mapping = align(stored, raw)
    assert [raw[i] for i in raw_indices(mapping, 0, len(stored))] == list("information")
    assert raw_indices(mapping, 6, 13) == [8, 9, 11, 12, 13, 14]  # "mation", the NUL skipped


def test_align_keeps_the_agreeing_runs_when_the_other_side_has_extra_text() -> None:
    # Text outside the page's box is in PDFium's list but not in the bounded extraction.
    stored = "Hello world"
    raw = list("XX Hello YY world ZZ")
    mapping = align(stored, raw)
    assert "".join(raw[i] for i in raw_indices(mapping, 0, 5)) == "Hello"
    assert "".join(raw[i] for i in raw_indices(mapping, 6, 11)) == "world"
    assert raw_indices(mapping, 0, 5) == [3, 4, 5, 6, 7]


def test_merge_runs_makes_one_box_per_line_and_per_column() -> None:
    # (left, top, right, bottom), y up: "ab" on one line, "c" on the next, "d" far right.
    line = [(10.0, 20.0, 15.0, 10.0), (15.5, 20.0, 20.0, 10.0)]
    below = [(10.0, 8.0, 15.0, -2.0)]
    far = [(300.0, 8.0, 305.0, -2.0)]
    assert merge_runs(line + below + far) == [
        (10.0, 20.0, 20.0, 10.0),
        (10.0, 8.0, 15.0, -2.0),
        (300.0, 8.0, 305.0, -2.0),
    ]
    column = [(10.0, 100.0, 20.0, 90.0), (10.0, 89.0, 20.0, 79.0), (10.5, 78.0, 19.5, 68.0)]
    assert merge_runs(column) == [(10.0, 100.0, 20.0, 68.0)]


def _span(data: bytes, page: int, quote: str) -> PageSpanText:
    """The quote's place in the page's stored text, as the parser stored it."""
    doc = parse(data)
    span = doc.pages[page - 1]
    text = doc.text[span.start : span.end]
    at = text.index(quote)
    return PageSpanText(page, text, at, at + len(quote))


def _text_under(data: bytes, page: int, boxes: list[Box], *, vertical: bool = False) -> str:
    """What PDFium reads inside each box (narrowed across its line so no neighbour line's
    characters have their centres inside), spaces dropped."""
    pdf = pdfium.PdfDocument(data)
    p = pdf[page - 1]
    tp = p.get_textpage()
    out = []
    for x0, y0, x1, y1 in boxes:
        if vertical:
            x0, x1 = x0 + (x1 - x0) * 0.3, x1 - (x1 - x0) * 0.3
        else:
            y0, y1 = y0 + (y1 - y0) * 0.3, y1 - (y1 - y0) * 0.3
        corners = []
        for x, y in ((x0, y0), (x1, y1)):
            px, py = ctypes.c_double(), ctypes.c_double()
            size = 1_000_000
            pdfium_c.FPDF_DeviceToPage(p, 0, 0, size, size, 0, int(x * size), int(y * size), px, py)
            corners.append((px.value, py.value))
        (ax, ay), (bx, by) = corners
        text = tp.get_text_bounded(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
        out.append("".join(text.split()))
    return "".join(out)


def _ink_bbox(image: Image.Image) -> Box:
    """The bounding box of the dark pixels, as fractions of the image."""
    gray = image.convert("L").point(lambda v: 255 if v < 128 else 0)
    left, top, right, bottom = gray.getbbox() or (0, 0, 0, 0)
    return (left / image.width, top / image.height, right / image.width, bottom / image.height)


def test_boxes_of_a_quote_in_a_real_pdf_cover_exactly_its_words() -> None:
    data = (FIXTURES / "pagelabels.pdf").read_bytes()
    [found] = passage_boxes(data, spans=[_span(data, 2, "Some text here")])
    assert (found.page, found.width, found.height) == (2, 612.0, 792.0)
    assert len(found.boxes) == 1
    assert _text_under(data, 2, found.boxes) == "Sometexthere"
    # Independently: PDFium's own search for the words, its tight boxes, y flipped by hand.
    tp = pdfium.PdfDocument(data)[1].get_textpage()
    start, count = tp.search("Some text here").get_next()
    lefts, bottoms, rights, tops = zip(
        *(tp.get_charbox(i) for i in range(start, start + count)), strict=True
    )
    x0, y0, x1, y1 = found.boxes[0]
    assert x0 == pytest.approx(min(lefts) / 612, abs=0.003)
    assert x1 == pytest.approx(max(rights) / 612, abs=0.003)
    assert y0 <= 1 - max(tops) / 792 <= y0 + 0.01  # a loose box: the font's full height
    assert y1 - 0.01 <= 1 - min(bottoms) / 792 <= y1


def test_a_quote_over_two_lines_gets_a_box_on_each() -> None:
    data = (FIXTURES / "pagelabels.pdf").read_bytes()
    [found] = passage_boxes(data, spans=[_span(data, 2, "Second section\nSome text")])
    assert len(found.boxes) == 2
    assert found.boxes[0][3] <= found.boxes[1][1] + 0.002  # the second line is below
    assert _text_under(data, 2, found.boxes) == "SecondsectionSometext"


def test_vertical_japanese_text_gets_one_box_down_its_column() -> None:
    data = (FIXTURES / "jo-japanese-vertical.pdf").read_bytes()
    quote = "それが虚無ならば虚無自身がこのとほりで"
    [found] = passage_boxes(data, spans=[_span(data, 1, quote)])
    assert len(found.boxes) == 1
    x0, y0, x1, y1 = found.boxes[0]
    assert y1 - y0 > 5 * (x1 - x0)  # a tall, narrow column
    assert _text_under(data, 1, found.boxes, vertical=True) == quote


@pytest.mark.parametrize("rotate", [0, 1, 2, 3])
def test_boxes_sit_on_the_ink_of_the_rendered_page_whatever_its_rotation(rotate: int) -> None:
    data = make_pdf([["Only this line is printed here."]], rotate=rotate)
    [found] = passage_boxes(data, spans=[_span(data, 1, "Only this line is printed here.")])
    portrait = rotate % 2 == 0
    assert (found.width, found.height) == ((612.0, 792.0) if portrait else (792.0, 612.0))
    image = Image.open(io.BytesIO(render_page(data, page=1, width=900, fmt="png")))
    assert image.size == ((900, 1165) if portrait else (900, 696))
    [(x0, y0, x1, y1)] = found.boxes
    ix0, iy0, ix1, iy1 = _ink_bbox(image)
    tol = 0.004
    assert x0 - tol <= ix0 and ix1 <= x1 + tol and y0 - tol <= iy0 and iy1 <= y1 + tol
    # ... and fits it: no more than a glyph's slack on any side.
    assert (ix1 - ix0) > 0.8 * (x1 - x0) and (iy1 - iy0) > 0.5 * (y1 - y0)


def test_a_span_over_a_page_break_has_boxes_on_both_pages() -> None:
    data = make_pdf(TWO_PAGES)
    doc = parse(data)
    start = doc.text.index("grew by")
    end = doc.text.index("twelve percent") + len("twelve percent")
    passage = passage_of(doc.text, layout_of(doc), start, end)
    assert (passage.page_start, passage.page_end) == (1, 2)
    spans = passage.spans
    assert [(sp.page, sp.text[sp.start : sp.end]) for sp in spans] == [
        (1, "grew by"),
        (2, "twelve percent"),
    ]
    first, second = passage_boxes(data, spans=spans)
    assert _text_under(data, 1, first.boxes) == "grewby"
    assert _text_under(data, 2, second.boxes) == "twelvepercent"


@pytest.mark.parametrize(("width", "fmt"), [(200, "png"), (900, "webp"), (2000, "webp")])
def test_render_gives_the_asked_width_in_the_asked_format(width: int, fmt: str) -> None:
    data = (FIXTURES / "pagelabels.pdf").read_bytes()
    image = Image.open(io.BytesIO(render_page(data, page=2, width=width, fmt=fmt)))
    assert image.format == fmt.upper()
    assert image.width == width and abs(image.height - width * 792 / 612) < 1
    assert _ink_bbox(image)[2] > 0  # something is drawn


def test_a_very_tall_page_is_rendered_narrower_than_asked() -> None:
    data = make_pdf([["tall"]], size=(200.0, 14000.0))
    image = Image.open(io.BytesIO(render_page(data, page=1, width=2000, fmt="png")))
    assert image.width * image.height <= 8_000_000 and image.width < 2000


def test_viewer_refuses_a_pdf_it_cannot_open_without_the_password(tmp_path: Path) -> None:
    viewer = SourceViewer(ViewerConfig(timeout_s=30))
    with pytest.raises(NotRenderableError, match="password"):
        viewer.render(FIXTURES / "r2-user-password.pdf", 1, 900, "png")


def test_viewer_answers_unavailable_when_pdfium_overruns_its_time() -> None:
    viewer = SourceViewer(ViewerConfig(timeout_s=0.001))
    with pytest.raises(UnavailableError, match="took longer than"):
        viewer.render(FIXTURES / "pagelabels.pdf", 1, 900, "png")


def test_viewer_renders_in_the_sandbox_what_rendering_in_process_gives() -> None:
    viewer = SourceViewer(ViewerConfig(timeout_s=30))
    path = FIXTURES / "pagelabels.pdf"
    assert viewer.render(path, 3, 400, "png") == render_page(
        path.read_bytes(), page=3, width=400, fmt="png"
    )
