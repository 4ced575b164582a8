"""Globs over '/'-separated relative paths (folder sources, filename filters).

`**/` spans zero or more folders, `**` elsewhere any characters, `*` any run inside one
name, `?` one character of a name, `[a-z]` / `[!a-z]` one character of a name in (or not
in) a set. Matching is case-insensitive: folders shared from Windows and macOS mix '.PDF'
and '.pdf'.

A glob compiles to a small NFA run as a lazily built DFA, so a match costs time linear
in the path whatever the pattern: a backtracking regex (what this used to be) took over a
minute on `**/**/**/**/**/**/x` and held the GIL, freezing every request meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from data.errors import InvalidInputError

MAX_GLOB_CHARS = 256
MAX_GLOB_SEGMENTS = 32
_CACHE_LIMIT = 1 << 14  # DFA transitions kept per glob; past it the cache starts over

# What one character must be for a node to consume it.
_NONE, _CHAR, _NAME_CHAR, _CLASS, _ANY = range(5)


@dataclass(frozen=True)
class _Node:
    kind: int
    step: int  # the node a consumed character leads to
    eps: tuple[int, ...] = ()  # nodes reached without a character
    char: str = ""  # _CHAR: the character, lower-cased
    cls: re.Pattern[str] | None = None  # _CLASS: a one-character set


class Glob:
    """A compiled glob; `match(path)` says whether the whole relative path matches it.

    It learns its DFA as it matches, so give each thread its own (they are cheap to build).
    """

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_GLOB_CHARS or pattern.count("/") >= MAX_GLOB_SEGMENTS:
            raise InvalidInputError(
                f"glob too long: at most {MAX_GLOB_CHARS} characters "
                f"and {MAX_GLOB_SEGMENTS} '/'-separated parts"
            )
        if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
            raise InvalidInputError(f"bad glob {pattern!r}: use a relative pattern like '**/*.pdf'")
        self.pattern = pattern
        self._nodes = _compile(pattern)
        self._accept = 1 << len(self._nodes)
        self._closure = [self._close(i) for i in range(len(self._nodes) + 1)]
        self._reset()

    def match(self, path: str) -> bool:
        """Whether `path` matches the glob as a whole; time linear in len(path)."""
        if self._size > _CACHE_LIMIT:
            self._reset()  # odd inputs keep adding states: start over (no state id is live now)
        state, rows = self._start, self._rows
        for ch in path:
            nxt = rows[state].get(ch)
            if nxt is None:
                nxt = self._add(state, ch)
            if nxt < 0:
                return False
            state = nxt
        return bool(self._sets[state] & self._accept)

    def _reset(self) -> None:
        # DFA states, numbered as met: their NFA node sets and the transitions seen so far.
        self._sets: list[int] = []
        self._ids: dict[int, int] = {}
        self._rows: list[dict[str, int]] = []
        self._size = 0
        self._start = self._state(self._closure[0])

    def _state(self, nodes: int) -> int:
        """The DFA state of NFA node set `nodes` (-1 when empty: nothing can match)."""
        if not nodes:
            return -1
        sid = self._ids.get(nodes)
        if sid is None:
            sid = self._ids[nodes] = len(self._sets)
            self._sets.append(nodes)
            self._rows.append({})
        return sid

    def _add(self, state: int, ch: str) -> int:
        """Work out, and remember, where `state` goes on `ch`."""
        nxt = self._state(self._step(self._sets[state], ch))
        self._rows[state][ch] = nxt
        self._size += 1
        return nxt

    def _close(self, i: int) -> int:
        """Node `i` and every node reached from it without consuming a character, as bits."""
        seen, todo = 0, [i]
        while todo:
            j = todo.pop()
            if not seen >> j & 1:
                seen |= 1 << j
                if j < len(self._nodes):
                    todo.extend(self._nodes[j].eps)
        return seen

    def _step(self, state: int, ch: str) -> int:
        """The DFA state after `state` reads `ch`."""
        low, out = ch.lower(), 0
        while state:
            bit = state & -state
            state ^= bit
            i = bit.bit_length() - 1
            if i == len(self._nodes):
                continue  # the accept state reads nothing
            n = self._nodes[i]
            if (
                (n.kind == _CHAR and n.char == low)
                or (n.kind == _NAME_CHAR and ch != "/")
                or (n.kind == _CLASS and ch != "/" and n.cls is not None and n.cls.match(ch))
                or n.kind == _ANY
            ):
                out |= self._closure[n.step]
        return out


def _compile(pattern: str) -> list[_Node]:
    """The NFA: node k's successor is k + 1 unless it loops; the last + 1 accepts."""
    nodes: list[_Node] = []
    i = 0
    while i < len(pattern):
        k = len(nodes)
        if pattern.startswith("**/", i):
            # (any characters, then '/') or nothing: zero or more whole folders.
            nodes.append(_Node(_NONE, k, eps=(k + 1, k + 3)))
            nodes.append(_Node(_ANY, k + 1, eps=(k + 2,)))
            nodes.append(_Node(_CHAR, k + 3, char="/"))
            i += 3
        elif pattern.startswith("**", i):
            nodes.append(_Node(_ANY, k, eps=(k + 1,)))
            i += 2
        elif pattern[i] == "*":
            nodes.append(_Node(_NAME_CHAR, k, eps=(k + 1,)))
            i += 1
        elif pattern[i] == "?":
            nodes.append(_Node(_NAME_CHAR, k + 1))
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            nodes.append(_Node(_CLASS, k + 1, cls=_char_set(pattern[i + 1 : end])))
            i = end + 1
        else:
            nodes.append(_Node(_CHAR, k + 1, char=pattern[i].lower()))
            i += 1
    return nodes


def _char_set(body: str) -> re.Pattern[str]:
    """`a-z0-9_` (or `!a-z`, `^a-z` for "not") as a one-character regex; ranges are kept."""
    negate = body[:1] in ("!", "^")
    chars = body[1:] if negate else body
    inner = "".join(c if c == "-" else re.escape(c) for c in chars)
    try:
        return re.compile(("[^" if negate else "[") + inner + "]", re.IGNORECASE)
    except re.error as exc:
        raise InvalidInputError(f"bad glob character set [{body}]: {exc.msg}") from exc
