"""Markdown parser: the text is the markdown source itself; sections come from its headings."""

from __future__ import annotations

import re
from collections.abc import Iterator

from data.types import ParsedDocument, Section
from ingest.errors import CorruptError, NoTextError, ParseError
from ingest.parsers.text import decode_text

_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_WS = re.compile(r"\s+")


def _front_matter_lines(text: str) -> int:
    """Count the lines of a leading YAML front-matter block (0 when there is none)."""
    if not (text.startswith("---\n") or text.startswith("--- \n")):
        return 0
    end = _FRONT_MATTER_END.search(text, text.index("\n") + 1)
    if end is None:
        return 0
    return text.count("\n", 0, end.end()) + 1


def _line_starts(text: str) -> list[int]:
    """Char offset of the start of every line, plus one past the end."""
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    starts.append(len(text))
    return starts


def _inline_plain(children: list) -> str:
    """Plain text of a heading's inline tokens: markup dropped, line breaks as spaces."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return _WS.sub(" ", "".join(parts)).strip()


def _headings(source: str) -> Iterator[tuple[int, int, str]]:
    """Yield (level, index of the heading's first line, plain title) for each titled heading."""
    # Imported here so importing the parser registry stays cheap.
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(source)
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open" or opening.map is None:
            continue
        title = _inline_plain(inline.children or [])
        if title:
            yield int(opening.tag[1]), opening.map[0], title


def _sections(text: str) -> list[Section]:
    """Sections with nested heading paths, each starting at its heading's line.

    The line start (the `#` marker included) keeps a heading whole inside its own section,
    so a chunk boundary at a section start never strands the marker in the previous chunk.
    """
    skip = _front_matter_lines(text)
    lines = text.split("\n")
    # Blank the front matter so its closing "---" is not read as a setext underline.
    source = "\n" * skip + "\n".join(lines[skip:])
    starts = _line_starts(text)
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    for level, line_no, title in _headings(source):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        sections.append(Section(start=starts[line_no], heading_path=tuple(t for _, t in stack)))
    return sections


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse a markdown file; `password` is ignored."""
    try:
        text = decode_text(data)
        if not text.strip():
            raise NoTextError("The markdown file is empty or contains only whitespace.")
        sections = _sections(text)
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the markdown file: {exc}") from exc
    return ParsedDocument(text=text, sections=sections)
