"""Decide, one sentence at a time, whether an answer's claim may reach the user.

A sentence passes only if (1) one of its candidate sources has a 1-3 sentence span that
supports it lexically (`llm.citations.best_support` at the support threshold), (2) every
number, amount, percentage and date in it is stated in that span (`llm.numbers`), (3) that
span, with the sentences around it, is relevant to the question (holds enough of the
question's content words that the chunk's heading and filename do not already hold),
(4) it is written in the question's script (a Chinese question gets no English sentence),
and (5) when the question names documents, the span comes from one of them. A sentence
that only restates the question (no content word the question lacks) is no answer. Candidates are
the sources the sentence cites; a sentence without markers may be backed by any source
(small models forget markers).

Evidence for the `evidence` event and for extractive answers is chosen the same way: the
span of a top source that covers most of the question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm.citations import (
    best_support,
    extract_markers,
    quote_citation,
    sentences,
    span_windows,
    strip_markers,
    tokens,
)
from llm.numbers import unmatched
from llm.types import Citation, Source

# Question words carry no topic; leaving them in would let any chunk "cover" a question.
_QUESTION_STOP = tokens(  # as the tokenizer stems them ("where" -> "wher")
    "how why when where many much does did what which who whom whose name named list "
    "tell give describe explain according"
)
_CJK_QUESTION_CHARS = frozenset("哪谁几吗呢怎么什何为是的了")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
EVIDENCE_SOURCES = 3  # quotes come from the best few sources only
EVIDENCE_MAX_QUOTES = 3
EVIDENCE_MIN_RATIO = 0.5  # a second quote must cover at least half of what the best covers
EVIDENCE_MAX_CHARS = 600


@dataclass(frozen=True)
class Check:
    """The verdict on one sentence: its best citation (if any source was tried) and why not."""

    citation: Citation | None
    reason: str  # "" when the sentence passes

    @property
    def ok(self) -> bool:
        """Whether the sentence may be shown."""
        return not self.reason


def question_tokens(question: str) -> frozenset[str]:
    """The question's content tokens: words and CJK bigrams, question words removed."""
    return frozenset(
        t
        for t in tokens(question)
        if t not in _QUESTION_STOP and not (_CJK.match(t) and set(t) & _CJK_QUESTION_CHARS)
    )


def coverage(question: str | frozenset[str], text: str) -> float:
    """The share of the question's content tokens that `text` contains (0..1)."""
    asked = question_tokens(question) if isinstance(question, str) else question
    if not asked:
        return 0.0
    return len(asked & tokens(text)) / len(asked)


def is_cjk(text: str) -> bool:
    """Whether `text` is mainly Chinese/Japanese: more CJK characters than Latin letters."""
    return len(_CJK.findall(text)) > len(_LATIN.findall(text)) / 4


def same_script(question: str, sentence: str) -> bool:
    """Whether a sentence is written in the question's script (CJK or not)."""
    if not _CJK.search(sentence) and not _LATIN.search(sentence):
        return True  # numbers and punctuation only
    return is_cjk(sentence) == is_cjk(question)


class Checker:
    """Checks sentences of one answer against its sources and question."""

    def __init__(
        self,
        question: str,
        sources: Sequence[Source],
        *,
        support_threshold: float,
        relevance_threshold: float,
        named_documents: frozenset[int] = frozenset(),
    ) -> None:
        self.question = question
        self.sources = list(sources)
        self.support_threshold = support_threshold
        self.relevance_threshold = relevance_threshold
        self.named_documents = named_documents
        self._asked = question_tokens(question)
        self._windows = {s.index: span_windows(s.text) for s in self.sources}
        self._sentences = {s.index: sentences(s.text) for s in self.sources}
        self._by_index = {s.index: s for s in self.sources}
        names = "|".join(sorted({re.escape(s.filename) for s in self.sources}, key=len)[::-1])
        # A small model sometimes copies a context block's header ("[1] report.pdf, p. 3").
        self._header = (
            re.compile(rf"^[ \t]*(?:[\[【]\d+[\]】])?[ \t]*(?:{names})\b[^\n]*(?:\n|$)", re.M)
            if names
            else None
        )

    def clean(self, sentence: str) -> str:
        """The sentence without copied context-block header lines."""
        return self._header.sub("", sentence).strip() if self._header else sentence

    def check(self, sentence: str) -> Check:
        """The verdict on one answer sentence (markers included, as the model wrote it)."""
        claim_text = strip_markers(sentence).strip()
        claim = tokens(claim_text)
        if not claim:
            return Check(None, "empty")
        if not same_script(self.question, claim_text):
            return Check(None, "language")
        if not claim - self._asked:
            # "X renounced violence as a means of achieving its goals" for "When had X
            # renounced violence ...?": the question restated, with no answer in it.
            return Check(None, "echo")
        cited = [n for n, _, _ in extract_markers(sentence) if n in self._by_index]
        pool = [self._by_index[n] for n in dict.fromkeys(cited)] or list(self.sources)
        best: Check | None = None
        for source in pool:
            verdict = self._against(source, claim_text, claim)
            if verdict.ok:
                return verdict
            if best is None or _support(verdict) > _support(best):
                best = verdict
        return best or Check(None, "no source")

    def _against(self, source: Source, claim_text: str, claim: frozenset[str]) -> Check:
        windows = self._windows[source.index]
        # Only spans that state every number of the claim may back it.
        numeric = [w for w in windows if not unmatched(claim_text, source.text[w[1] : w[2]])]
        score, start, end = best_support(claim, numeric)
        if not numeric or score == 0.0:
            score, start, end = best_support(claim, windows)
            reason = "number" if windows and score >= self.support_threshold else "unsupported"
            return Check(quote_citation(source, start, end, score, False), reason)
        citation = quote_citation(source, start, end, score, score >= self.support_threshold)
        if not citation.supported:
            return Check(citation, "unsupported")
        if self.named_documents and source.document_id not in self.named_documents:
            return Check(citation, "other document")
        if self.relevance(source, start, end) < self.relevance_threshold:
            return Check(citation, "irrelevant")
        return Check(citation, "")

    def relevance(self, source: Source, start: int, end: int) -> float:
        """Question coverage of a span with one sentence either side.

        Question words that the chunk's heading or filename already hold (the company in
        "IBM annual report > Facilities") are left out: they make every span of the
        document look relevant, so the span must cover the rest of the question itself.
        """
        spans = self._sentences[source.index]  # split once per answer, not per sentence
        inside = [i for i, (s, e) in enumerate(spans) if e > start and s < end] or [0]
        lo = spans[max(0, inside[0] - 1)][0] if spans else start
        hi = spans[min(len(spans) - 1, inside[-1] + 1)][1] if spans else end
        asked = self._asked - tokens(f"{source.heading or ''} {source.filename}") or self._asked
        return coverage(asked, source.text[lo:hi])


def _support(check: Check) -> float:
    return check.citation.support if check.citation is not None else -1.0


def evidence(
    question: str,
    sources: Sequence[Source],
    named_documents: frozenset[int] = frozenset(),
) -> list[Citation]:
    """The best 1-3 quotes for `question` from the top sources, best first (may be empty).

    Each quote is the 1-3 sentence span of a source that covers most of the question's
    content words (ties: the shorter), as a Citation with support = that coverage.
    """
    asked = question_tokens(question)
    if not asked:
        return []
    pool = [s for s in sources if not named_documents or s.document_id in named_documents]
    found: list[Citation] = []
    for source in pool[:EVIDENCE_SOURCES]:
        windows = [w for w in span_windows(source.text) if w[2] - w[1] <= EVIDENCE_MAX_CHARS]
        score, start, end = best_support(asked, windows)
        # best_support scales down very short claims; a question's coverage must not be.
        score = len(asked & tokens(source.text[start:end])) / len(asked) if end > start else 0.0
        if score > 0:
            found.append(quote_citation(source, start, end, score, True))
    found.sort(key=lambda c: -c.support)  # stable: ties keep the retrieval order
    if not found:
        return []
    floor = found[0].support * EVIDENCE_MIN_RATIO
    return [c for c in found if c.support >= floor][:EVIDENCE_MAX_QUOTES]


def extractive_answer(quotes: Sequence[Citation]) -> str:
    """An answer made of the evidence quotes, each followed by its marker."""
    parts = []
    for c in quotes:
        # A paper's own reference marks ("[12]") would read as citations of ours.
        text = " ".join(strip_markers(c.quote).split())
        parts.append(f"{text} [{c.index}]")
    return "\n".join(parts)
