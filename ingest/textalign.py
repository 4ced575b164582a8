"""Align a page's stored text with PDFium's character list, character by character.

The PDF parser stores `normalize(get_text_bounded())` (ingest/parsers/pdf.py): line
breaks unified, PDFium's soft-hyphen marks and control characters dropped, runs of
spaces collapsed, the page stripped. So an offset into the stored text is not a PDFium
character index. Both sides keep every other character in the same order, so matching
their non-space characters recovers the mapping; where they differ (text outside the
page's box that bounded extraction leaves out, a different reading order) a diff of the
two keeps the longest runs that agree and leaves the rest unmapped.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

# Characters the parser drops or rewrites: whitespace, controls (PDFium's soft-hyphen
# mark U+0002 among them) and non-characters. Only what is left is matched.
_DROPPED = frozenset(chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))) | {
    "\ufffe",
    "\uffff",
}


def _kept(ch: str) -> bool:
    return not ch.isspace() and ch not in _DROPPED


def _keys(chars: Sequence[str]) -> tuple[list[int], str]:
    """Positions of the characters that count, and those characters as one string."""
    positions = [i for i, ch in enumerate(chars) if _kept(ch)]
    return positions, "".join(chars[i] for i in positions)


def align(stored: str, raw: Sequence[str]) -> list[int]:
    """For each character of `stored`, the index in `raw` it came from, or -1 (a space
    the parser made, or a character the other side lacks)."""
    mapping = [-1] * len(stored)
    s_pos, s_key = _keys(stored)
    r_pos, r_key = _keys(raw)
    if s_key == r_key:  # the usual case: the same characters, spacing aside
        for s, r in zip(s_pos, r_pos, strict=True):
            mapping[s] = r
        return mapping
    matcher = difflib.SequenceMatcher(None, s_key, r_key, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            mapping[s_pos[a + k]] = r_pos[b + k]
    return mapping


def raw_indices(mapping: Sequence[int], start: int, end: int) -> list[int]:
    """The raw indices, ascending and once each, of the stored characters [start:end]."""
    return sorted({r for r in mapping[max(start, 0) : end] if r >= 0})
