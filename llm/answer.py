"""Answer a question from retrieved sources, with checked citations — or refuse.

The flow: rewrite a follow-up into a standalone question (only when it needs it), retrieve,
refuse without calling the LLM when the calibrated relevance score is too low (llm.refusal),
send the best evidence quotes, then stream the model's answer through the sentence gate
(llm.gate): only sentences a relevant cited span backs, numbers included, are shown. When
none passes, the answer is extractive: the evidence quotes with their citations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from llm.citations import DEFAULT_SUPPORT_THRESHOLD, tokens, verify
from llm.gate import SentenceGate, join
from llm.grounding import Checker, evidence, extractive_answer
from llm.prompts import build_messages, clean_rewrite, needs_rewrite, rewrite_prompt
from llm.refusal import RefusalPolicy, relevance
from llm.types import (
    ChatMessage,
    ChatModel,
    Citation,
    GenerationStats,
    LLMBusyError,
    LLMUnavailableError,
    Source,
)

log = logging.getLogger(__name__)

REFUSAL = "I could not find this in the documents."
# Question coverage a supporting span (with its neighbours and heading) must reach: a copied
# sentence that does not concern the question is not an answer to it. bench/answers.py.
DEFAULT_RELEVANCE_THRESHOLD = 0.3


class Unsupported(StrEnum):
    """What happens to an answer sentence that its sources do not back."""

    DROP = "drop"  # hidden (stored with the message for administrators)
    MARK = "mark"  # returned apart, in `unverified`
    KEEP = "keep"  # shown as generated (the behaviour before verification)


@dataclass(frozen=True)
class Retrieved:
    """Sources for a question, and the best relevance among every candidate the retriever
    looked at (with fused rankings the most similar chunk may not be among the sources)."""

    sources: list[Source]
    best_score: float
    named_documents: frozenset[int] = frozenset()  # documents the question names


Retrieve = Callable[[str], Retrieved]


@dataclass(frozen=True)
class AnswerConfig:
    """Knobs of the answer flow."""

    refusal: RefusalPolicy = field(default_factory=RefusalPolicy)
    support_threshold: float = DEFAULT_SUPPORT_THRESHOLD
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD
    unsupported: Unsupported = Unsupported.DROP
    generate: bool = True  # False: extractive answers only, no LLM
    max_answer_tokens: int = 256
    temperature: float = 0.0
    rewrite_max_tokens: int = 48


@dataclass(frozen=True)
class Evidence:
    """The best quotes for the question, sent before the model writes anything."""

    quotes: list[Citation]
    elapsed_s: float  # since the question was asked


@dataclass(frozen=True)
class Delta:
    """A piece of the shown answer: verified sentences (raw model text in `keep` mode)."""

    text: str


@dataclass(frozen=True)
class Unverified:
    """A sentence the model wrote that did not pass, and why (unsupported, number, ...)."""

    text: str
    reason: str


@dataclass
class Final:
    """The checked answer; its `answer` text is authoritative over the streamed deltas."""

    answer: str
    query: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    model_id: str | None = None
    finish_reason: str = "stop"
    stats: GenerationStats | None = None
    latency_s: float = 0.0
    mode: str = "generated"  # generated, extractive or refused
    unverified: list[Unverified] = field(default_factory=list)
    evidence: list[Citation] = field(default_factory=list)
    relevance: float | None = None  # the refusal score the question got


def standalone_question(
    model: ChatModel,
    question: str,
    history: Sequence[ChatMessage],
    config: AnswerConfig,
    cancel: threading.Event | None = None,
) -> str:
    """The question rewritten with the history when it refers back to it, else as is."""
    if not needs_rewrite(question, history):
        return question
    text = "".join(
        model.stream(
            rewrite_prompt(history, question),
            max_tokens=config.rewrite_max_tokens,
            temperature=0.0,
            cancel=cancel,
        )
    )
    rewritten = clean_rewrite(text, question)
    if rewritten != question and _keeps(question, rewritten):
        return rewritten
    # Small models often echo the earlier question and drop what is new; then the
    # previous question plus the follow-up carries both subjects to retrieval.
    previous = next((m.content for m in reversed(history) if m.role == "user"), "")
    return f"{previous} {question}".strip()


def _keeps(question: str, rewritten: str) -> bool:
    """Whether the rewrite kept at least half of the follow-up's own content words."""
    asked = tokens(question)
    return not asked or len(asked & tokens(rewritten)) * 2 >= len(asked)


def answer(
    question: str,
    history: Sequence[ChatMessage],
    retrieve: Retrieve,
    model: ChatModel | None,
    config: AnswerConfig,
    cancel: threading.Event | None = None,
) -> Iterator[Evidence | Delta | Final]:
    """Yield Evidence, then verified deltas, then one Final; refuse before the LLM when
    nothing fits. Without a model (or with `config.generate` off) the answer is extractive."""
    start = time.perf_counter()
    query = standalone_question(model, question, history, config, cancel) if model else question
    found = retrieve(query)
    sources = found.sources
    score, refuse = relevance(query, found.best_score, sources, config.refusal)
    if refuse:
        yield Final(
            answer=REFUSAL,
            query=query,
            refused=True,
            sources=sources,
            mode="refused",
            relevance=score,
            latency_s=time.perf_counter() - start,
        )
        return
    quotes = evidence(query, sources, found.named_documents)
    if model is None or not config.generate:
        yield Evidence(quotes, time.perf_counter() - start)
        yield from _extractive(query, sources, quotes, score, [], start)
        return
    budget = model.context_window - config.max_answer_tokens
    # The standalone question already carries what the history contributed.
    messages, used = build_messages(
        query, sources, [], count_tokens=model.count_tokens, budget=budget
    )
    # Asked before the evidence is sent, so a full queue is still a 429, not an SSE error.
    deltas = model.stream(
        messages, max_tokens=config.max_answer_tokens, temperature=config.temperature, cancel=cancel
    )
    yield Evidence(quotes, time.perf_counter() - start)
    checker = Checker(
        query,
        used,
        support_threshold=config.support_threshold,
        relevance_threshold=config.relevance_threshold,
        named_documents=found.named_documents,
    )
    gate = SentenceGate(checker)
    keep = config.unsupported == Unsupported.KEEP
    parts: list[str] = []
    shown: list[str] = []
    failure: str | None = None
    try:
        for delta in deltas:
            parts.append(delta)
            for judged in gate.feed(delta):
                if judged.shown and not keep:
                    yield Delta(_spaced(shown, judged.shown))
                    shown.append(judged.shown)
            if keep and not gate.stopped:
                yield Delta(delta)
            if gate.stopped:  # closing the stream below ends the generation
                break
    except (LLMUnavailableError, LLMBusyError) as exc:
        # The evidence is already out: answer from it rather than fail the request.
        log.warning("generation failed, answering from the evidence: %s", exc)
        failure = "busy" if isinstance(exc, LLMBusyError) else "llm_unavailable"
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()
    for judged in gate.finish():
        if judged.shown and not keep:
            yield Delta(_spaced(shown, judged.shown))
            shown.append(judged.shown)
    stats: GenerationStats | None = getattr(model, "last_stats", None)
    failed = [Unverified(j.text, j.check.reason) for j in gate.judged if not j.check.ok]
    reason = failure or ("repetition" if gate.stopped else _finish_reason(cancel, stats, config))
    if keep:
        raw = "".join(parts) if not gate.stopped else " ".join(j.text for j in gate.judged[:-1])
        text, citations = verify(raw, used, threshold=config.support_threshold)
    else:
        text = join(shown)
        citations = _best_per_source([j.check.citation for j in gate.judged if j.shown])
    if not text.strip() and not (cancel is not None and cancel.is_set()):
        yield from _extractive(query, used, quotes, score, failed, start, model, stats, reason)
        return
    yield Final(
        answer=text,
        query=query,
        refused=False,
        citations=citations,
        sources=used,
        model_id=model.model_id,
        finish_reason=reason,
        stats=stats,
        latency_s=time.perf_counter() - start,
        mode="generated",
        unverified=failed,
        evidence=quotes,
        relevance=score,
    )


def _extractive(
    query: str,
    sources: list[Source],
    quotes: list[Citation],
    score: float,
    failed: list[Unverified],
    start: float,
    model: ChatModel | None = None,
    stats: GenerationStats | None = None,
    reason: str = "stop",
) -> Iterator[Delta | Final]:
    """The answer built from the evidence quotes (a refusal when there are none)."""
    text = extractive_answer(quotes) if quotes else REFUSAL
    if quotes:
        yield Delta(text)
    yield Final(
        answer=text,
        query=query,
        refused=not quotes,
        # The answer's sentences are the quotes themselves: each fully supports itself.
        citations=sorted((replace(c, support=1.0) for c in quotes), key=lambda c: c.index),
        sources=sources,
        model_id=model.model_id if model else None,
        finish_reason=reason if quotes else "refused",
        stats=stats,
        latency_s=time.perf_counter() - start,
        mode="extractive" if quotes else "refused",
        unverified=failed,
        evidence=quotes,
        relevance=score,
    )


def _spaced(shown: list[str], sentence: str) -> str:
    """The delta text of a new shown sentence, with the space `join` puts before it."""
    return join([*shown[-1:], sentence])[len(shown[-1]) :] if shown else sentence


def _best_per_source(citations: list[Citation | None]) -> list[Citation]:
    """One citation per source: its quote spans every span that backed a shown sentence."""
    merged: dict[int, Citation] = {}
    for c in citations:
        if c is None:
            continue
        m = merged.get(c.index)
        if m is not None:
            start, end = min(m.quote_start, c.quote_start), max(m.quote_end, c.quote_end)
            c = replace(
                c,
                quote=c.source.text[start:end],
                quote_start=start,
                quote_end=end,
                support=min(m.support, c.support),
            )
        merged[c.index] = c
    return sorted(merged.values(), key=lambda c: c.index)


def _finish_reason(
    cancel: threading.Event | None, stats: GenerationStats | None, config: AnswerConfig
) -> str:
    if cancel is not None and cancel.is_set():
        return "cancelled"
    if stats is not None and stats.completion_tokens >= config.max_answer_tokens:
        return "length"
    return "stop"
