"""Split a parsed document into chunks sized in the embedding model's own tokens."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer
from tokenizers.pre_tokenizers import BertPreTokenizer, Whitespace, WhitespaceSplit

from data.types import ChunkSpan, PageSpan, ParsedDocument, Section

# How good a place the boundary before a token is for a cut; higher is better.
INSIDE_WORD, WORD, CLAUSE, SENTENCE, LINE, PARAGRAPH, SECTION = -1, 0, 1, 2, 3, 4, 5

# Applied in ascending level order so a stronger boundary overwrites a weaker one.
_BOUNDARY_PATTERNS = (
    (CLAUSE, re.compile(r"[,;:](?=\s)|[，、：]")),
    (SENTENCE, re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|[。！？；]+[”’」』）]*")),
    (LINE, re.compile(r"\n")),
    (PARAGRAPH, re.compile(r"\n[^\S\n]*\n|\f")),
)
# One huge string encodes slower than many pieces (and pieces allow parallel encoding).
_SEGMENT_CHARS = 16_384
# With these pre-tokenizers a slice made of whole words tokenizes exactly as inside the
# full text, so its token count is known without encoding it again.
_WORD_LOCAL_PRE_TOKENIZERS = (BertPreTokenizer, Whitespace, WhitespaceSplit)


@dataclass(frozen=True)
class _Tokens:
    """Token offsets of one document and how good a cut is before each token."""

    text: str
    starts: np.ndarray  # char offset where token k starts
    ends: np.ndarray  # char offset where token k ends
    levels: np.ndarray  # levels[j] rates a cut between tokens j-1 and j; len n + 1
    section_toks: list[int]  # sorted indices of tokens that open a new section
    split_toks: list[int]  # first tokens of encoded pieces that were cut inside a word

    @property
    def n(self) -> int:
        """Number of tokens."""
        return len(self.starts)

    def whole_words(self, i: int, j: int) -> bool:
        """Whether tokens i..j-1 are whole words, tokenized as they would be on their own."""
        k = bisect.bisect_right(self.split_toks, i)
        inner_split = k < len(self.split_toks) and self.split_toks[k] < j
        return min(self.levels[i], self.levels[j]) >= WORD and not inner_split


class TokenChunker:
    """Split documents into chunks of at most `max_tokens` embedding-model tokens."""

    def __init__(self, tokenizer: Tokenizer, *, max_tokens: int, overlap_tokens: int = 0) -> None:
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
        if not 0 <= overlap_tokens < max_tokens / 2:
            raise ValueError(
                f"overlap_tokens must be >= 0 and < max_tokens / 2 ({max_tokens / 2:g}), "
                f"got {overlap_tokens}"
            )
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        # A private copy: the caller's tokenizer keeps its truncation and padding settings.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._word_local = isinstance(self._tokenizer.pre_tokenizer, _WORD_LOCAL_PRE_TOKENIZERS)

    def count_tokens(self, text: str) -> int:
        """Number of tokens `text` encodes to, without special tokens."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def split(self, doc: ParsedDocument) -> list[ChunkSpan]:
        """Chunk `doc.text`; every token lands in at least one chunk, in document order."""
        tokens = self._tokenize(doc)
        if tokens.n == 0:
            return []
        layout = Layout.of(doc)
        return [
            layout.span(doc.text, ordinal, int(tokens.starts[i]), int(tokens.ends[j - 1]), count)
            for ordinal, (i, j, count) in enumerate(self._plan(tokens))
        ]

    def _tokenize(self, doc: ParsedDocument) -> _Tokens:
        """Encode the text once, in pieces cut at whitespace, and rate every boundary."""
        text = doc.text
        cuts = _segment_starts(text)
        pieces = [text[a:b] for a, b in zip(cuts, [*cuts[1:], len(text)], strict=True)]
        encodings = self._tokenizer.encode_batch(pieces, add_special_tokens=False)
        offsets, continued, split_toks, n = [], [], [], 0
        for cut, enc in zip(cuts, encodings, strict=True):
            offsets.append(np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2) + cut)
            words = np.asarray(enc.word_ids, dtype=np.float64)  # None (special) -> NaN
            # A piece cut inside a word (no whitespace found) must not look like a clean start.
            split_word = cut > 0 and not text[cut - 1].isspace()
            continued.append(np.concatenate(([split_word], words[1:] == words[:-1]))[: len(words)])
            split_toks += [n] if split_word else []
            n += len(words)
        spans = np.concatenate(offsets)  # there is always at least one (maybe empty) piece
        starts, ends = spans[:, 0], spans[:, 1]
        levels = _rate_boundaries(doc, starts, np.concatenate(continued))
        section_toks = (np.flatnonzero(levels[1:-1] == SECTION) + 1).tolist()
        return _Tokens(text, starts, ends, levels, section_toks, split_toks)

    def _plan(self, tokens: _Tokens) -> list[tuple[int, int, int]]:
        """Walk left to right: (first token, end token, token count) of each chunk."""
        chunks: list[tuple[int, int, int]] = []
        i = done = 0  # `done`: tokens before it are already covered by a chunk
        while True:
            j, count = self._fit(tokens, i, self._choose_end(tokens, i, done), done)
            chunks.append((i, j, count))
            if j >= tokens.n:
                return chunks
            i, done = self._next_start(tokens, i, j), j

    def _choose_end(self, tokens: _Tokens, i: int, done: int) -> int:
        """Best end token for a chunk starting at token `i` that covers past `done`."""
        m, n = self.max_tokens, tokens.n
        hard = min(n, i + m)
        # Don't run across a new heading once the chunk has a reasonable size.
        k = bisect.bisect_left(tokens.section_toks, max(i + m // 4, done + 1))
        if k < len(tokens.section_toks) and tokens.section_toks[k] <= hard:
            return tokens.section_toks[k]
        if hard == n:
            return n
        # Prefer the strongest boundary in the window's second half, then anywhere after `done`;
        # only a word longer than the window is cut inside.
        j = _best_cut(tokens.levels, max(i + m // 2, done + 1), hard, prefer=hard)
        if j is None:
            j = _best_cut(tokens.levels, done + 1, hard, prefer=hard) or hard
        if n - j < m // 8:
            # Rebalance the last two chunks instead of leaving a tiny tail.
            lo = max(done + 1, n + self.overlap_tokens - m)
            mid = (i + n + self.overlap_tokens) // 2
            j = _best_cut(tokens.levels, lo, min(hard, n - m // 8), prefer=mid) or j
        return j

    def _fit(self, tokens: _Tokens, i: int, j: int, done: int) -> tuple[int, int]:
        """Shrink the end until the chunk text re-encodes to at most max_tokens."""
        while True:
            if self._word_local and tokens.whole_words(i, j):
                count = j - i
            else:  # a word cut in two (or a context-sensitive tokenizer): measure it
                text = tokens.text[tokens.starts[i] : tokens.ends[j - 1]]
                count = self.count_tokens(text)
            # Stopping at `done` keeps coverage; only a pathological tokenizer gets there.
            if count <= self.max_tokens or j - 1 <= done:
                return j, count
            j -= 1

    def _next_start(self, tokens: _Tokens, i: int, j: int) -> int:
        """First token of the chunk after one ending at `j`: overlap snapped to a clean start."""
        overlap, levels = self.overlap_tokens, tokens.levels
        if overlap == 0 or levels[j] >= SECTION:
            return j  # a new section starts clean, without text of the previous one
        lo = max(j - overlap, i + 1)
        k = bisect.bisect_right(tokens.section_toks, j) - 1
        if k >= 0:  # never reach back across a heading
            lo = max(lo, tokens.section_toks[k])
        if lo >= j:
            return j
        window = levels[lo:j]
        # A sentence start is worth giving up at most half of the overlap.
        for found in (
            np.flatnonzero(window[: overlap // 2 + 1] >= SENTENCE),
            np.flatnonzero(window >= WORD),
        ):
            if found.size:
                return lo + int(found[0])
        return lo


def _segment_starts(text: str) -> list[int]:
    """Start offsets of pieces of about _SEGMENT_CHARS, cut after a newline or space."""
    cuts = [0]
    while len(text) - cuts[-1] > _SEGMENT_CHARS:
        lo, hi = cuts[-1] + _SEGMENT_CHARS // 2, cuts[-1] + _SEGMENT_CHARS
        cuts.append(text.rfind("\n", lo, hi) + 1 or text.rfind(" ", lo, hi) + 1 or hi)
    return cuts


def _rate_boundaries(doc: ParsedDocument, starts: np.ndarray, continued: np.ndarray) -> np.ndarray:
    """Level of the boundary before each token (and after the last one)."""
    n = len(starts)
    levels = np.full(n + 1, WORD, dtype=np.int8)
    for level, pattern in _BOUNDARY_PATTERNS:
        ends = np.fromiter((m.end() for m in pattern.finditer(doc.text)), dtype=np.int64)
        levels[np.searchsorted(starts, ends)] = level
    page_toks = np.searchsorted(starts, np.array([p.start for p in doc.pages], dtype=np.int64))
    levels[page_toks] = np.maximum(levels[page_toks], PARAGRAPH)
    section_starts = np.array([s.start for s in doc.sections], dtype=np.int64)
    levels[np.searchsorted(starts, section_starts)] = SECTION
    # Word pieces of one word stay together; this overrides everything above.
    levels[:n][continued] = INSIDE_WORD
    levels[0] = levels[n] = SECTION
    return levels


def _best_cut(levels: np.ndarray, lo: int, hi: int, *, prefer: int) -> int | None:
    """Token in [lo, hi] with the best boundary level (ties: nearest `prefer`); None if no word."""
    window = levels[lo : hi + 1]
    if window.size == 0 or window.max() < WORD:
        return None
    candidates = lo + np.flatnonzero(window == window.max())
    return int(candidates[np.argmin(np.abs(candidates - prefer))])


@dataclass(frozen=True)
class Layout:
    """Pages and sections of one document, sorted, with their starts ready for bisect."""

    pages: list[PageSpan]
    page_starts: list[int]
    sections: list[Section]
    section_starts: list[int]

    @classmethod
    def of(cls, doc: ParsedDocument) -> Layout:
        """Sort the document's pages and sections by start offset."""
        pages = sorted(doc.pages, key=lambda p: p.start)
        sections = sorted(doc.sections, key=lambda s: s.start)
        return cls(pages, [p.start for p in pages], sections, [s.start for s in sections])

    def page_at(self, offset: int) -> PageSpan | None:
        """The page containing `offset` (text before the first page counts as page one)."""
        if not self.pages:
            return None
        return self.pages[max(bisect.bisect_right(self.page_starts, offset) - 1, 0)]

    def heading_at(self, offset: int) -> str | None:
        """Heading path of the last section starting at or before `offset`."""
        k = bisect.bisect_right(self.section_starts, offset) - 1
        if k < 0 or not self.sections[k].heading_path:
            return None
        return " > ".join(self.sections[k].heading_path)

    def span(self, text: str, ordinal: int, start: int, end: int, count: int) -> ChunkSpan:
        """The ChunkSpan for text[start:end] with its pages and heading."""
        first, last = self.page_at(start), self.page_at(end - 1)
        return ChunkSpan(
            ordinal=ordinal,
            start=start,
            end=end,
            text=text[start:end],
            token_count=count,
            page_start=first.number if first else None,
            page_end=last.number if last else None,
            page_label=first.label if first else None,
            heading=self.heading_at(start),
        )
