"""WordprocessingML elements as text: paragraphs, tables, text boxes and equations.

Shared by every story of a .docx (body, headers, footnotes, comments, text boxes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.parsers import omml

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
P, TBL, _R, _TR, _TC = (f"{W}{t}" for t in ("p", "tbl", "r", "tr", "tc"))
_V_MERGE = f"{W}tcPr/{W}vMerge"
_SDT, _SDT_CONTENT, _CUSTOM_XML = f"{W}sdt", f"{W}sdtContent", f"{W}customXml"
_BR = f"{W}br"
_TXBX, _ALTERNATE = f"{W}txbxContent", f"{_MC}AlternateContent"
# Inline wrappers whose runs are part of the visible text (w:del / w:moveFrom are not).
_RUN_WRAPPERS = {f"{W}{t}" for t in ("hyperlink", "ins", "smartTag", "fldSimple", "moveTo")}
_HIDDEN = {f"{W}del", f"{W}moveFrom"}
# What python-docx's run.text reads, done here so math and unknown runs share one path.
_RUN_TEXT = {f"{W}t": None, f"{W}tab": "\t", f"{W}br": "\n", f"{W}cr": "\n"}
_RUN_TEXT |= {f"{W}noBreakHyphen": "-", f"{W}ptab": "\t"}


def _unwrap(el: Any) -> Any:
    """The element holding a content control's or custom-XML wrapper's children."""
    return el.find(_SDT_CONTENT) if el.tag == _SDT else el


def block_elements(container: Any) -> Iterator[Any]:
    """Yield the w:p and w:tbl children of a body/cell/header in order, through wrappers."""
    for child in container.iterchildren():
        if child.tag in (P, TBL):
            yield child
        elif child.tag in (_SDT, _CUSTOM_XML) and (inner := _unwrap(child)) is not None:
            yield from block_elements(inner)


def _r_text(r: Any) -> str:
    """A run's text: w:t, tabs and line breaks (page and column breaks add nothing)."""
    parts = []
    for child in r.iterchildren():
        if child.tag == _BR and child.get(f"{W}type", "textWrapping") != "textWrapping":
            continue
        if child.tag in _RUN_TEXT:
            fixed = _RUN_TEXT[child.tag]
            parts.append(child.text or "" if fixed is None else fixed)
    return "".join(parts)


def run_text(container: Any) -> str:
    """Visible text of a paragraph's runs, hyperlinks, tracked insertions and equations."""
    parts: list[str] = []
    for child in container.iterchildren():
        if child.tag == _R:
            parts.append(_r_text(child))
        elif omml.is_math(child):
            parts.append(omml.linear(child))
        elif child.tag in _RUN_WRAPPERS or child.tag in (_SDT, _CUSTOM_XML):
            inner = _unwrap(child)
            if inner is not None:
                parts.append(run_text(inner))
    return "".join(parts)


def _text_boxes(el: Any) -> Iterator[Any]:
    """The outermost w:txbxContent under `el`, one branch of each mc:AlternateContent.

    A shape is stored twice, as DrawingML (mc:Choice) and as VML (mc:Fallback), with the
    same text: the first branch that holds a text box is taken, the others skipped.
    Boxes nested in a box are found when that box's paragraphs are read.
    """
    for child in el.iterchildren():
        if child.tag == _TXBX:
            yield child
        elif child.tag == _ALTERNATE:
            for branch in child.iterchildren():
                found = list(_text_boxes(branch))
                if found:
                    yield from found
                    break
        elif child.tag not in _HIDDEN:
            yield from _text_boxes(child)


def box_lines(p: Any) -> list[str]:
    """Lines of the text boxes and shapes anchored in paragraph `p`."""
    if next(p.iter(_TXBX), None) is None:  # the common case, decided in C
        return []
    lines: list[str] = []
    for box in _text_boxes(p):
        lines.extend(block_lines(box))
    return lines


def _cell_text(tc: Any) -> str:
    """One-line text of a cell; empty for the lower parts of a vertically merged cell."""
    merge = tc.find(_V_MERGE)
    if merge is not None and merge.get(f"{W}val", "continue") == "continue":
        return ""  # Word shows only the first cell's content; leftovers here are hidden
    return " ".join(block_lines(tc, flat=True))


def table_rows(tbl: Any) -> list[str]:
    """One line per non-empty row, cells joined by " | " (nested tables flattened)."""
    rows = []
    for tr in tbl.iterchildren(_TR):
        cells = [_cell_text(tc) for tc in tr.iterchildren(_TC)]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def block_lines(container: Any, *, flat: bool = False) -> list[str]:
    """Non-empty texts of a container's paragraphs (then their text boxes) and tables."""
    lines = []
    for el in block_elements(container):
        if el.tag == P:
            texts = [run_text(el).strip(), *box_lines(el)]
        else:
            texts = ["\n".join(table_rows(el))]
        for text in texts:
            if text:
                lines.append(" ".join(text.split()) if flat else text)
    return lines
