"""PDF pages for the source view: where a passage's characters are, and the page as an image.

Both functions take the PDF's bytes and run in the sandbox (ingest/sandbox.py): the file is
untrusted and PDFium can hang or crash on it. Boxes are fractions (0..1) of the page as it
is displayed (crop box, /Rotate applied), origin top-left, one rectangle per line run.

Only the sandbox imports this module (by name), so PDFium and Pillow are imported at the
top: the sandbox's fork server preloads them once instead of every child paying ~80 ms.
"""

from __future__ import annotations

import ctypes
import io
import logging
import math

import pypdfium2
import pypdfium2.raw as pdfium_c
from PIL import Image, PngImagePlugin, WebPImagePlugin  # noqa: F401  (preloaded encoders)

from data.types import Box, PageBoxes, PageSpanText
from ingest.errors import CorruptError
from ingest.parsers.pdf import open_pdf
from ingest.textalign import align, raw_indices

logger = logging.getLogger(__name__)

# The device PDFium maps a page onto to give fractions: big enough for 6 decimals.
_DEVICE = 1_000_000
# A step to the next character stays in its run when the two overlap this much across
# the run's direction and the gap along it is at most this many character heights.
_OVERLAP = 0.5
_GAP = 1.5
MAX_PIXELS = 8_000_000  # a tall page at width 2000 is rendered narrower than asked


def passage_boxes(
    data: bytes, *, password: str | None = None, spans: list[PageSpanText]
) -> list[PageBoxes]:
    """The line boxes of each span's characters on its page (a page that fails: no boxes)."""
    pdf = open_pdf(data, password)
    try:
        return [_page_boxes(pdf, span) for span in spans]
    finally:
        pdf.close()


def _page_boxes(pdf: pypdfium2.PdfDocument, span: PageSpanText) -> PageBoxes:
    page = pdf[span.page - 1]
    try:
        width, height = page.get_size()
        textpage = page.get_textpage()
        try:
            mapping = align(span.text, _chars(textpage))
            chars = [_charbox(textpage, i) for i in raw_indices(mapping, span.start, span.end)]
        finally:
            textpage.close()
        runs = merge_runs([c for c in chars if c is not None])
        boxes = [_to_fractions(page, run) for run in runs]
    finally:
        page.close()
    return PageBoxes(span.page, round(width, 2), round(height, 2), boxes)


def _chars(textpage: pypdfium2.PdfTextPage) -> list[str]:
    """PDFium's characters, one per character index (the order get_charbox uses)."""
    count = textpage.count_chars()
    codes = (pdfium_c.FPDFText_GetUnicode(textpage, i) for i in range(count))
    return [chr(c) if c <= 0x10FFFF else "\ufffd" for c in codes]


def _charbox(textpage: pypdfium2.PdfTextPage, index: int) -> Box | None:
    """The character's loose box (the font's full height, as a selection shows it) in page
    space as (left, top, right, bottom), y up; None for a character without extent."""
    try:
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
    except Exception:  # PDFium has no box for it (e.g. a generated character)
        return None
    if right <= left or top <= bottom:
        return None
    return (left, top, right, bottom)


def merge_runs(boxes: list[Box]) -> list[Box]:
    """Merge boxes (page space, y up, in reading order) into one rectangle per run of
    characters that follow each other on a line (or down a column of vertical text)."""
    runs: list[Box] = []
    last: Box | None = None
    direction: str | None = None
    for box in boxes:
        step = _step(last, box) if last is not None else None
        if step is not None and direction in (None, step):
            run = runs[-1]
            runs[-1] = (
                min(run[0], box[0]),
                max(run[1], box[1]),
                max(run[2], box[2]),
                min(run[3], box[3]),
            )
            direction = step
        else:
            runs.append(box)
            direction = None
        last = box
    return runs


def _step(a: Box, b: Box) -> str | None:
    """ "h" if b follows a on the same line, "v" if below it in the same column, else None."""
    ah, bh = a[1] - a[3], b[1] - b[3]
    aw, bw = a[2] - a[0], b[2] - b[0]
    v_overlap = min(a[1], b[1]) - max(a[3], b[3])
    if v_overlap >= _OVERLAP * min(ah, bh) and -aw <= b[0] - a[2] <= _GAP * max(ah, bh):
        return "h"
    h_overlap = min(a[2], b[2]) - max(a[0], b[0])
    if h_overlap >= _OVERLAP * min(aw, bw) and -ah <= a[3] - b[1] <= _GAP * max(aw, bw):
        return "v"
    return None


def _to_fractions(page: pypdfium2.PdfPage, box: Box) -> Box:
    """A page-space box as fractions of the displayed page, origin top-left."""
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[3])):
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, _DEVICE, _DEVICE, 0, x, y, dx, dy)
        xs.append(min(max(dx.value / _DEVICE, 0.0), 1.0))
        ys.append(min(max(dy.value / _DEVICE, 0.0), 1.0))
    return (round(min(xs), 5), round(min(ys), 5), round(max(xs), 5), round(max(ys), 5))


def render_page(
    data: bytes, *, password: str | None = None, page: int, width: int, fmt: str = "webp"
) -> bytes:
    """Page `page` (1-based) rendered `width` pixels wide, no annotations' highlights
    added: lossless WebP (about 5x smaller than PNG for text pages) or PNG."""
    pdf = open_pdf(data, password)
    try:
        if not 1 <= page <= len(pdf):
            raise CorruptError(f"the PDF has {len(pdf)} pages; there is no page {page}")
        pdf_page = pdf[page - 1]
        try:
            image = _render(pdf_page, width)
        finally:
            pdf_page.close()
    finally:
        pdf.close()
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG")
    else:  # method 1: as small as the slower methods for text pages, encoded faster
        image.save(out, "WEBP", lossless=True, method=1)
    return out.getvalue()


def _render(page: pypdfium2.PdfPage, width: int) -> Image.Image:
    """The page as an RGB PIL image `width` pixels wide (narrower past MAX_PIXELS)."""
    page_w, page_h = page.get_size()
    if page_w <= 0 or page_h <= 0:
        raise CorruptError("the page has no area")
    width = min(width, math.floor(math.sqrt(MAX_PIXELS * page_w / page_h)))
    # PDFium's bitmap is ceil(size * scale) wide: aim just under `width`.
    scale = (max(width, 1) - 0.001) / page_w
    bitmap = page.render(scale=scale, rev_byteorder=True, draw_annots=True, may_draw_forms=True)
    try:
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
