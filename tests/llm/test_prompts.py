"""Tests for the answer prompt, its token budget, and follow-up question rewriting."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llm.prompts import (
    SYSTEM_PROMPT,
    build_messages,
    clean_rewrite,
    format_source,
    needs_rewrite,
    rewrite_prompt,
)
from llm.types import ChatMessage, PromptTooLongError, Source

HISTORY = [
    ChatMessage("user", "What is aspirin?"),
    ChatMessage("assistant", "Aspirin is a pain reliever [1]."),
]


def _source(
    index: int,
    text: str,
    *,
    page_start: int | None = None,
    page_end: int | None = None,
    heading: str | None = None,
) -> Source:
    return Source(
        index=index,
        chunk_id=index,
        document_id=1,
        filename="report.pdf",
        page_start=page_start,
        page_end=page_end,
        heading=heading,
        text=text,
        score=0.9,
    )


def _chars_over_4(messages: Sequence[ChatMessage]) -> int:
    """A stand-in tokenizer: one token per four characters."""
    return sum(len(m.content) for m in messages) // 4


def test_format_source_with_page_range_and_heading() -> None:
    s = _source(1, " Revenue grew. ", page_start=3, page_end=4, heading="Results")
    assert format_source(s) == "[1] report.pdf, p. 3–4 — Results\nRevenue grew."


def test_format_source_single_page_and_bare() -> None:
    assert format_source(_source(2, "x", page_start=5, page_end=5)) == "[2] report.pdf, p. 5\nx"
    assert format_source(_source(3, "x")) == "[3] report.pdf\nx"


def test_system_prompt_asks_for_bracketed_numbers_and_a_refusal() -> None:
    assert "[1]" in SYSTEM_PROMPT and "cannot find" in SYSTEM_PROMPT
    assert len(SYSTEM_PROMPT) < 400  # a 135M model follows short instructions better


def test_build_messages_fits_everything_within_budget() -> None:
    sources = [_source(1, "Alpha."), _source(2, "Beta.")]
    messages, used = build_messages(
        "Why?", sources, HISTORY, count_tokens=_chars_over_4, budget=1000
    )
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2].content == "Aspirin is a pain reliever."  # old markers stripped
    assert messages[3].content == (
        "Context:\n[1] report.pdf\nAlpha.\n\n[2] report.pdf\nBeta.\n\nQuestion: Why?"
    )
    assert used == sources


def test_build_messages_drops_the_lowest_ranked_source_first() -> None:
    sources = [_source(1, "a" * 40), _source(2, "b" * 40), _source(3, "c" * 40)]
    full = _chars_over_4(
        build_messages("Q?", sources, [], count_tokens=_chars_over_4, budget=10_000)[0]
    )
    messages, used = build_messages("Q?", sources, [], count_tokens=_chars_over_4, budget=full - 5)
    assert [s.index for s in used] == [1, 2]
    assert "[2] report.pdf" in messages[-1].content
    assert "ccc" not in messages[-1].content
    assert _chars_over_4(messages) <= full - 5


def test_build_messages_drops_history_after_all_but_the_best_source() -> None:
    sources = [_source(1, "a" * 40), _source(2, "b" * 400)]
    one_source = build_messages("Q?", sources[:1], [], count_tokens=_chars_over_4, budget=10_000)[0]
    messages, used = build_messages(
        "Q?", sources, HISTORY, count_tokens=_chars_over_4, budget=_chars_over_4(one_source)
    )
    assert [s.index for s in used] == [1]
    assert [m.role for m in messages] == ["system", "user"]


def test_build_messages_raises_when_even_the_question_does_not_fit() -> None:
    with pytest.raises(PromptTooLongError):
        build_messages("Q" * 4000, [_source(1, "a")], [], count_tokens=_chars_over_4, budget=100)


def test_build_messages_keeps_only_recent_history_starting_with_a_user_turn() -> None:
    history = [
        ChatMessage("user", f"u{i}") if i % 2 == 0 else ChatMessage("assistant", f"a{i}")
        for i in range(7)
    ]
    messages, _ = build_messages(
        "Q?", [], history, count_tokens=_chars_over_4, budget=1000, max_history=4
    )
    # the last 4 turns are a3 u4 a5 u6; a leading assistant turn is dropped
    assert [m.content for m in messages[1:-1]] == ["u4", "a5", "u6"]
    assert messages[-1].content == "Context:\n(no context)\n\nQuestion: Q?"


def test_rewrite_prompt_shows_the_conversation_and_the_follow_up() -> None:
    messages = rewrite_prompt(HISTORY, " and what about its side effects? ")
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[1].content == (
        "Conversation:\nUser: What is aspirin?\nAssistant: Aspirin is a pain reliever.\n\n"
        "Follow-up question: and what about its side effects?\nStandalone question:"
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("What are the side effects of aspirin?", "What are the side effects of aspirin?"),
        (
            "Standalone question: What are aspirin's side effects?\nAnswer: ...",
            "What are aspirin's side effects?",
        ),
        ('\n  "What are the side effects of aspirin?"  ', "What are the side effects of aspirin?"),
        ("**Question:** Who makes aspirin?", "Who makes aspirin?"),
        ("独立问题：阿司匹林有什么副作用？", "阿司匹林有什么副作用？"),
        ("", "and its side effects?"),
        ("Aspirin can upset the stomach [1].", "and its side effects?"),  # an answer
        ("Aspirin can upset the stomach.", "and its side effects?"),  # a statement
        ("I'm sorry, I cannot rewrite that?", "and its side effects?"),
        ("What " + "really " * 60 + "are they?", "and its side effects?"),  # too long
    ],
)
def test_clean_rewrite(output: str, expected: str) -> None:
    assert clean_rewrite(output, "and its side effects?") == expected


def test_clean_rewrite_keeps_an_imperative_rewrite_of_an_imperative() -> None:
    assert clean_rewrite("List aspirin's side effects.", "List its side effects.") == (
        "List aspirin's side effects."
    )


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        ("What about its side effects?", [], False),  # nothing to refer back to
        ("and in 2019?", HISTORY, True),  # short: elliptical
        ("What are the known side effects of aspirin in children?", HISTORY, False),
        ("What are the known side effects of it in children?", HISTORY, True),
        ("And what are the known side effects of aspirin in children?", HISTORY, True),
        ("《战国无双3》是由哪两个公司合作开发的？", HISTORY, False),
        ("它是由哪两个公司合作开发的游戏？", HISTORY, True),
        ("副作用呢？", HISTORY, True),
    ],
)
def test_needs_rewrite(question: str, history: list[ChatMessage], expected: bool) -> None:
    assert needs_rewrite(question, history) is expected
