"""Globs over '/'-separated relative paths (folder sources, filename filters)."""

from __future__ import annotations

import re

from data.errors import InvalidInputError


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over '/'-separated relative paths: `**` spans folders, `*` does not."""
    if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        raise InvalidInputError(f"bad glob {pattern!r}: use a relative pattern like '**/*.pdf'")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    # Case-insensitive: folders shared from Windows and macOS mix '.PDF' and '.pdf'.
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)
