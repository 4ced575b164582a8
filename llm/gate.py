"""The sentence gate: generated text goes in, judged sentences come out as they complete.

A sentence is judged once the next one has begun (it can no longer grow) or generation has
ended. Judged sentences that pass are re-cited with the source that backs them, so every
shown sentence carries a supported `[n]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llm.citations import _TAIL, sentences, strip_markers
from llm.grounding import Check, Checker
from llm.repetition import looping, repeated_sentence
from llm.types import Citation

_WORDY = re.compile(r"[^\W\d_]")
_CJK_END = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]$")


@dataclass(frozen=True)
class Judged:
    """One sentence as the model wrote it, its verdict, and its shown form when it passes."""

    text: str
    check: Check
    shown: str


@dataclass
class SentenceGate:
    """Splits a growing answer into sentences and judges each exactly once."""

    checker: Checker
    buffer: str = ""
    judged: list[Judged] = field(default_factory=list)
    stopped: bool = False  # the answer started to repeat itself

    def feed(self, delta: str) -> list[Judged]:
        """Add generated text; the sentences that completed with it."""
        self.buffer += delta
        spans = sentences(self.buffer)
        # The last span may still grow; a span that is only markers or punctuation so far
        # ("[", "[1") may still belong to the sentence before it.
        while spans and not _WORDY.search(strip_markers(self.buffer[spans[-1][0] :])):
            spans = spans[:-1]
        return self._judge(spans[:-1])

    def finish(self) -> list[Judged]:
        """Generation ended: judge what is left."""
        return self._judge(sentences(self.buffer))

    def _judge(self, spans: list[tuple[int, int]]) -> list[Judged]:
        out: list[Judged] = []
        for start, end in spans[len(self.judged) :]:
            if self.stopped:
                break
            text = self.checker.clean(self.buffer[start:end])
            check = self.checker.check(text)
            shown = cite(text, check.citation) if check.ok else ""
            judged = Judged(text, check, shown)
            self.judged.append(judged)
            if repeated_sentence([j.text for j in self.judged]):
                self.judged[-1] = Judged(text, Check(check.citation, "repetition"), "")
                self.stopped = True
            else:
                out.append(judged)
        if looping(self.buffer):
            self.stopped = True
        return out


def cite(sentence: str, citation: Citation | None) -> str:
    """The sentence with its markers replaced by `[n]` of the backing source."""
    text = strip_markers(sentence).strip()
    if citation is None:
        return text
    tail = _TAIL.search(text)
    at = len(text) - len(tail.group(0)) if tail else len(text)
    body = text[:at].rstrip()
    marker = f"[{citation.index}]" if _CJK_END.search(body) else f" [{citation.index}]"
    return body + marker + text[at:]


def join(shown: list[str]) -> str:
    """Shown sentences as one text: spaces between Latin sentences, none after CJK ones."""
    out = ""
    for s in shown:
        if out and not _CJK_END.search(out.rstrip("[]0123456789")):
            out += " "
        out += s
    return out
