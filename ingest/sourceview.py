"""The source behind a citation: the passage in its context, its boxes on the PDF's pages,
and page images; PDFium work runs in the sandbox, bounded in time, memory and number."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.errors import ConflictError, InvalidInputError, NotRenderableError, UnavailableError
from data.types import PageBoxes, PageSpan, PageSpanText
from ingest.chunking import Layout
from ingest.chunkstore import parsed_from
from ingest.errors import EncryptedError, ParseError, ParseTimeoutError
from ingest.sandbox import run_in_subprocess

PDF = "application/pdf"
DEFAULT_WIDTH, MIN_WIDTH, MAX_WIDTH = 900, 200, 2000
CONTEXT_CHARS = 600  # of text shown before and after a passage
MAX_PASSAGE_CHARS = 20_000  # a citation quotes a sentence or a chunk, not a document
FORMATS = {"webp": "image/webp", "png": "image/png"}
# By name: PDFium and Pillow load only where they run, in the sandbox.
_BOXES = "ingest.pageview:passage_boxes"
_RENDER = "ingest.pageview:render_page"


@dataclass(frozen=True)
class ViewerConfig:
    """Limits on PDFium work for one request: time, memory, and requests at once."""

    timeout_s: float = 20.0
    memory_limit_mb: int | None = 2048
    max_concurrent: int = 2


@dataclass(frozen=True)
class Passage:
    """Document text [start:end] with the text around it, its pages and heading."""

    start: int
    end: int
    before: str
    text: str
    after: str
    heading: str | None
    page_start: int | None
    page_end: int | None
    page_label: str | None  # the printed label of page_start, where the PDF defines one
    page_count: int | None
    spans: list[PageSpanText]  # each page's stored text and the passage's part of it


def passage_of(text: str, layout: dict[str, Any] | None, start: int, end: int) -> Passage:
    """The passage [start:end] of a document's stored text (422 for a bad range)."""
    if start > end:
        raise InvalidInputError(f"start ({start}) is after end ({end})")
    if end > len(text):
        raise InvalidInputError(f"end ({end}) is past the document's {len(text)} characters")
    if end - start > MAX_PASSAGE_CHARS:
        raise InvalidInputError(f"a passage is at most {MAX_PASSAGE_CHARS:,} characters")
    parsed = parsed_from(text, layout or {"pages": [], "sections": []})
    where = Layout.of(parsed)
    first, last = where.page_at(start), where.page_at(max(end - 1, start))
    return Passage(
        start=start,
        end=end,
        before=_context_before(text, start),
        text=text[start:end],
        after=_context_after(text, end),
        heading=where.heading_at(start),
        page_start=first.number if first else None,
        page_end=last.number if last else None,
        page_label=first.label if first else None,
        page_count=parsed.page_count,
        spans=[_part(text, p, start, end) for p in where.pages if _touches(p, start, end)],
    )


def _touches(page: PageSpan, start: int, end: int) -> bool:
    return page.start < end and start < page.end


def _part(text: str, page: PageSpan, start: int, end: int) -> PageSpanText:
    local_start, local_end = max(start, page.start) - page.start, min(end, page.end) - page.start
    return PageSpanText(page.number, text[page.start : page.end], local_start, local_end)


def _context_before(text: str, start: int) -> str:
    """Up to CONTEXT_CHARS before `start`, from a word's start unless that is the text's."""
    lo = max(start - CONTEXT_CHARS, 0)
    window = text[lo:start]
    if lo > 0:
        cut = next((i for i, ch in enumerate(window) if ch.isspace()), -1)
        window = window[cut + 1 :] if 0 <= cut < len(window) // 2 else window
    return window


def _context_after(text: str, end: int) -> str:
    """Up to CONTEXT_CHARS after `end`, to a word's end unless that is the text's."""
    hi = min(end + CONTEXT_CHARS, len(text))
    window = text[end:hi]
    if hi < len(text):
        cut = max((i for i, ch in enumerate(window) if ch.isspace()), default=-1)
        window = window[:cut] if cut > len(window) // 2 else window
    return window


def clamp_width(width: int) -> int:
    """A requested image width within [MIN_WIDTH, MAX_WIDTH]."""
    return min(max(width, MIN_WIDTH), MAX_WIDTH)


class SourceViewer:
    """Runs PDFium in the sandbox for the source view, a bounded number at a time."""

    def __init__(self, config: ViewerConfig) -> None:
        self.config = config
        self._slots = threading.BoundedSemaphore(max(config.max_concurrent, 1))

    def boxes(self, pdf_path: Path, spans: list[PageSpanText]) -> list[PageBoxes]:
        """The passage's line boxes on each page it touches."""
        if not spans:
            return []
        result: list[PageBoxes] = self._run(_BOXES, pdf_path, {"spans": spans}, "locating text")
        return result

    def render(self, pdf_path: Path, page: int, width: int, fmt: str) -> bytes:
        """Page `page` as an image `width` pixels wide, in `fmt` ("webp" or "png")."""
        args = {"page": page, "width": clamp_width(width), "fmt": fmt}
        image: bytes = self._run(_RENDER, pdf_path, args, "rendering the page")
        return image

    def _run(self, target: str, pdf_path: Path, kwargs: dict[str, Any], what: str) -> Any:
        if not pdf_path.exists():
            raise ConflictError("the original file is no longer stored")
        if not self._slots.acquire(timeout=self.config.timeout_s):
            raise UnavailableError("too many pages are being rendered now; retry shortly")
        try:
            return run_in_subprocess(
                target,
                str(pdf_path),
                kwargs,
                timeout_s=self.config.timeout_s,
                memory_limit_mb=self.config.memory_limit_mb,
                what=what,
            )
        except EncryptedError as exc:
            raise NotRenderableError(
                "the PDF is password-protected and its password is not kept after indexing"
            ) from exc
        except ParseTimeoutError as exc:
            raise UnavailableError(exc.message) from exc
        except ParseError as exc:
            raise NotRenderableError(f"the PDF cannot be shown: {exc.message}") from exc
        finally:
            self._slots.release()
