"""Glob rules on tiny literal paths, bounds on patterns, and time linear in the path."""

from __future__ import annotations

import time

import pytest

from data.errors import InvalidInputError
from data.globs import MAX_GLOB_CHARS, MAX_GLOB_SEGMENTS, Glob


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.pdf", "a.pdf", True),
        ("**/*.pdf", "x/y/a.pdf", True),
        ("**/*.pdf", "a.pdf.txt", False),
        ("*.pdf", "x/a.pdf", False),  # `*` stays inside one name
        ("*.pdf", ".pdf", True),  # ...and may be empty
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "docs/", True),
        ("docs/**", "docs", False),
        ("docs/**", "other/docs/b.md", False),
        ("**/x", "x", True),  # `**/` is zero or more whole folders
        ("**/x", "a/b/x", True),
        ("**/x", "ax", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a**b", "a/x/b", True),  # `**` elsewhere spans folders too
        ("a*b", "a/b", False),
        ("x**/y", "xa/b/y", True),
        ("**/*.PDF", "report.pdf", True),  # case-insensitive
        ("Ü*.md", "ü-notes.MD", True),
        ("report-?.md", "report-1.md", True),
        ("report-?.md", "report-12.md", False),
        ("a?b", "a/b", False),  # `?` is one character of a name
        ("report-[!0-9].md", "report-1.md", False),
        ("report-[!0-9].md", "report-x.md", True),
        ("report-[^0-9].md", "report-x.md", True),
        ("[a-c].md", "B.md", True),
        ("[a-c].md", "d.md", False),
        ("a[!x]b", "a/b", False),  # a set never holds '/' (the regex form let `[!x]` take it)
        ("[]a]", "]", True),  # a leading ']' is a member
        ("[ab", "[ab", True),  # an unclosed '[' is itself
        ("a+b(1).md", "a+b(1).md", True),  # regex characters are plain
        ("a.md", "aXmd", False),
        ("a\\d", "a\\d", True),
    ],
)
def test_glob_rules(pattern: str, path: str, matches: bool) -> None:
    assert Glob(pattern).match(path) is matches


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/etc/*",
        "../*.md",
        "a/../../b",
        "[z-a].md",  # a reversed range: the regex form raised re.error, a 500
        "x" * (MAX_GLOB_CHARS + 1),
        "a/" * MAX_GLOB_SEGMENTS + "b",
    ],
)
def test_bad_globs_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        Glob(bad)


def test_the_longest_allowed_glob_compiles() -> None:
    assert Glob("a/" * (MAX_GLOB_SEGMENTS - 1) + "*").match("a/" * (MAX_GLOB_SEGMENTS - 1) + "b")
    assert Glob("x" * MAX_GLOB_CHARS).match("X" * MAX_GLOB_CHARS)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        # A backtracking regex took seconds on these two, holding the GIL throughout...
        ("**/" * 5 + "x", "a/" * 100),
        ("*a" * 8 + "b", "a" * 36),
        # ...and far longer (each `**/` multiplies by ~20) on these, the largest allowed.
        ("/".join(["**"] * MAX_GLOB_SEGMENTS) + "x", "a/" * 2000),
        ("*a" * (MAX_GLOB_CHARS // 2 - 1) + "b", "a" * 4000),
        ("**a" * (MAX_GLOB_CHARS // 3), "a" * 4000 + "b"),
        ("[a-z]*" * (MAX_GLOB_CHARS // 6) + "?", "ab/" * 1000),
    ],
)
def test_adversarial_globs_match_in_linear_time(pattern: str, path: str) -> None:
    glob = Glob(pattern)
    started = time.perf_counter()
    assert glob.match(path) is False
    assert glob.match(path[:-1] + "/") is False
    assert time.perf_counter() - started < 0.5


def test_many_distinct_paths_through_one_glob_stay_correct() -> None:
    """The learnt DFA is bounded: once it fills up it starts over, still right."""
    glob = Glob("**/*[0-9]?.md")
    for i in range(30_000):
        name = f"d{i % 97}/f{i}{chr(0x4E00 + i)}.md"  # a new character each time
        assert glob.match(name) is True
        assert glob.match(name[:-3]) is False
