"""Answer a question from retrieved sources, with checked citations — or refuse.

The flow: rewrite a follow-up into a standalone question (only when it needs it), retrieve,
refuse without calling the LLM when the best source is not relevant enough, otherwise
stream the model's answer and verify every citation against the sources it was given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from llm.citations import DEFAULT_SUPPORT_THRESHOLD, tokens, verify
from llm.prompts import build_messages, clean_rewrite, needs_rewrite, rewrite_prompt
from llm.types import ChatMessage, ChatModel, Citation, GenerationStats, Source

REFUSAL = "I could not find this in the documents."
# Cosine similarity of the best chunk below which we refuse. Calibrated with
# `bench/refusal.py` (max F1 of `refused` on one half of Cranfield questions vs off-corpus
# COVID-QA questions asked of a Cranfield collection; 0.4638), reported on the other half.
DEFAULT_REFUSAL_THRESHOLD = 0.46


@dataclass(frozen=True)
class Retrieved:
    """Sources for a question, and the best relevance among every candidate the retriever
    looked at (with fused rankings the most similar chunk may not be among the sources)."""

    sources: list[Source]
    best_score: float


Retrieve = Callable[[str], Retrieved]


@dataclass(frozen=True)
class AnswerConfig:
    """Knobs of the answer flow."""

    refusal_threshold: float = DEFAULT_REFUSAL_THRESHOLD
    support_threshold: float = DEFAULT_SUPPORT_THRESHOLD
    max_answer_tokens: int = 256
    temperature: float = 0.0
    rewrite_max_tokens: int = 48


@dataclass(frozen=True)
class Delta:
    """A piece of the answer as the model produced it (markers not yet checked)."""

    text: str


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
    model: ChatModel,
    config: AnswerConfig,
    cancel: threading.Event | None = None,
) -> Iterator[Delta | Final]:
    """Yield answer deltas, then one Final; refuse without generating when nothing fits."""
    start = time.perf_counter()
    query = standalone_question(model, question, history, config, cancel)
    found = retrieve(query)
    sources = found.sources
    # The threshold was calibrated on the best dense similarity; with hybrid retrieval that
    # chunk may have been ranked out of the sources, so the retriever reports it apart.
    if not sources or found.best_score < config.refusal_threshold:
        yield Final(
            answer=REFUSAL,
            query=query,
            refused=True,
            sources=sources,
            latency_s=time.perf_counter() - start,
        )
        return
    budget = model.context_window - config.max_answer_tokens
    # The standalone question already carries what the history contributed.
    messages, used = build_messages(
        query, sources, [], count_tokens=model.count_tokens, budget=budget
    )
    parts: list[str] = []
    for delta in model.stream(
        messages, max_tokens=config.max_answer_tokens, temperature=config.temperature, cancel=cancel
    ):
        parts.append(delta)
        yield Delta(delta)
    stats: GenerationStats | None = getattr(model, "last_stats", None)
    text, citations = verify("".join(parts), used, threshold=config.support_threshold)
    yield Final(
        answer=text,
        query=query,
        refused=False,
        citations=citations,
        sources=used,
        model_id=model.model_id,
        finish_reason=_finish_reason(cancel, stats, config),
        stats=stats,
        latency_s=time.perf_counter() - start,
    )


def _finish_reason(
    cancel: threading.Event | None, stats: GenerationStats | None, config: AnswerConfig
) -> str:
    if cancel is not None and cancel.is_set():
        return "cancelled"
    if stats is not None and stats.completion_tokens >= config.max_answer_tokens:
        return "length"
    return "stop"
