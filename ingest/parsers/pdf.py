"""PDF parser built on pypdfium2 (PDFium); see bench/pdf_parsers.py for why not pypdf.

Pages are joined with `PAGE_SEPARATOR` ("\\n\\n"); each page's text is stripped, so
`text[page.start:page.end]` is exactly that page and the next page starts
`len(PAGE_SEPARATOR)` characters after the previous one ends.

A document counts as having no text (`NoTextError`) when its pages average fewer
than `MIN_ALNUM_PER_PAGE` (3) letters/digits: a scan whose only text layer is a
page number is refused, while a one-page "Secret!" or "我是文字" still parses.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from data.types import PageSpan, ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError, ParseError

if TYPE_CHECKING:
    import pypdfium2

logger = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"
MIN_ALNUM_PER_PAGE = 3
MAX_BOOKMARKS = 5000

# PDFium's FPDF_GetLastError codes (fpdfview.h); pypdfium2 puts them on PdfiumError.err_code.
_ERR_PASSWORD = 4
_ERR_SECURITY = 5

# PDFium is not thread-safe; serialise in-process callers (the sandbox uses processes).
_PDFIUM_LOCK = threading.Lock()

# PDFium marks a hyphen it removed at a line break with U+0002; drop it so the word rejoins.
_SOFT_HYPHEN = "\x02"
# C0/C1 controls except \t and \n, plus non-characters: glyphs without a Unicode mapping.
_CONTROL = re.compile(r"[\x00\x01\x03-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def parse(
    data: bytes,
    *,
    password: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ParsedDocument:
    """Extract the text, page spans, page labels and outline sections of a PDF;
    `progress(pages done, pages)` is told after each page."""
    if not data:
        raise CorruptError("the file is empty")
    try:
        with _PDFIUM_LOCK:
            return _parse(data, password, progress)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # any library failure means the file is unusable
        logger.debug("pdf parse failed", exc_info=True)
        raise CorruptError(f"cannot read PDF: {type(exc).__name__}: {exc}") from exc


def normalize(text: str) -> str:
    """Normalise one page's text: newlines, controls, runs of spaces, blank-line runs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace(_SOFT_HYPHEN, "")
    text = _CONTROL.sub("", text)
    text = _HSPACE.sub(" ", text)
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    return _BLANK_LINES.sub("\n\n", text).strip()


def _parse(
    data: bytes, password: str | None, progress: Callable[[int, int], None] | None
) -> ParsedDocument:
    pdf = open_pdf(data, password)
    try:
        page_count = len(pdf)
        if page_count == 0:
            raise NoTextError("the PDF has no pages")
        texts = []
        for index in range(page_count):
            texts.append(_page_text(pdf, index))
            if progress is not None:
                progress(index + 1, page_count)
        parts: list[str] = []
        pages: list[PageSpan] = []
        offset = 0
        for index, page_text in enumerate(texts):
            if index:
                parts.append(PAGE_SEPARATOR)
                offset += len(PAGE_SEPARATOR)
            label = pdf.get_page_label(index) or None
            pages.append(PageSpan(index + 1, offset, offset + len(page_text), label))
            parts.append(page_text)
            offset += len(page_text)
        text = "".join(parts)
        _check_has_text(text, page_count)
        sections = _sections(pdf, pages, text)
    finally:
        pdf.close()
    return ParsedDocument(text=text, pages=pages, sections=sections, page_count=page_count)


def open_pdf(data: bytes, password: str | None) -> pypdfium2.PdfDocument:
    """Open the document, turning PDFium's load errors into specific ParseErrors."""
    import pypdfium2 as pdfium  # lazy: importing this module must not load PDFium

    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        code = exc.err_code
        if code == _ERR_SECURITY:
            raise EncryptedError(
                "encrypted with an unsupported security handler (DRM); it cannot be opened"
            ) from exc
        if code != _ERR_PASSWORD:
            raise CorruptError(f"cannot open PDF: {exc}") from exc
        if not password:
            raise EncryptedError("the PDF is password-protected; supply the password") from exc
        # A wrong password for a file that only has an owner password: it opens without one.
        try:
            return pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            raise EncryptedError("wrong password for this PDF") from exc


def _page_text(pdf: pypdfium2.PdfDocument, index: int) -> str:
    """One page's normalised text; a page PDFium cannot load yields "" (logged)."""
    try:
        page = pdf[index]
    except Exception as exc:  # keep the rest of the document
        logger.warning("PDF page %d cannot be loaded (%s); treating it as empty", index + 1, exc)
        return ""
    try:
        textpage = page.get_textpage()
        try:
            return normalize(textpage.get_text_bounded())
        finally:
            textpage.close()
    finally:
        page.close()


def _check_has_text(text: str, page_count: int) -> None:
    alnum = sum(1 for ch in text if ch.isalnum())
    if alnum < MIN_ALNUM_PER_PAGE * page_count:
        raise NoTextError(
            f"no extractable text ({alnum} letters/digits on {page_count} page(s)); "
            "it is probably scanned and needs OCR"
        )


def _sections(pdf: pypdfium2.PdfDocument, pages: list[PageSpan], text: str) -> list[Section]:
    """Outline entries as sections: start at the heading's text on its page, else the page."""
    try:
        bookmarks = list(pdf.get_toc(max_depth=8))
    except Exception as exc:  # a broken outline must not lose the text
        logger.warning("PDF outline unreadable (%s); no sections", exc)
        return []
    stack: list[str] = []
    found: dict[int, Section] = {}
    for bookmark in bookmarks[:MAX_BOOKMARKS]:
        title = " ".join((bookmark.get_title() or "").split())
        del stack[bookmark.level :]
        stack.append(title)
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        if not title or index is None or not 0 <= index < len(pages):
            continue
        page = pages[index]
        at = text.find(title, page.start, page.end)
        # Start at the heading's line (numbering like "2 " included), as other parsers do.
        start = max(text.rfind("\n", page.start, at) + 1, page.start) if at >= 0 else page.start
        # Later entries at the same offset are deeper or later; they win.
        found[start] = Section(start=start, heading_path=tuple(t for t in stack if t))
    return [found[start] for start in sorted(found)]
