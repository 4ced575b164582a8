"""Types shared by the chat-model backends, prompting, citations and the answer flow."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationStats:
    """What a finished generation cost."""

    prompt_tokens: int
    completion_tokens: int
    first_token_s: float  # seconds from the call to the first streamed text
    total_s: float


class ChatModel(Protocol):
    """A chat LLM: counts tokens with its own tokenizer and streams text deltas."""

    model_id: str
    context_window: int  # prompt + completion tokens the model can attend to

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of `messages` once the chat template is applied."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Text deltas as they are generated; stops early once `cancel` is set.

        After the iterator is exhausted, `last_stats` (on the backend) describes the run.
        Raises `LLMUnavailableError` when the backend cannot be reached or fails.
        """
        ...


class LLMUnavailableError(Exception):
    """The configured LLM backend is down or failed (→ 503)."""


class LLMBusyError(Exception):
    """Too many generations are waiting for the one shared model (→ 429 + Retry-After)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Source:
    """A retrieved chunk handed to the model as numbered context block `[index]`."""

    index: int
    chunk_id: int
    document_id: int
    filename: str
    page_start: int | None
    page_end: int | None
    heading: str | None
    text: str
    score: float  # the retriever's relevance (cosine similarity)


@dataclass(frozen=True)
class Citation:
    """A checked citation: which source backs a claim, how well, and the quote that does.

    `quote == source.text[quote_start:quote_end]`; `support` in [0, 1] measures how much of
    the citing sentence the quote supports; `supported` is `support >= threshold`.
    """

    index: int
    source: Source
    quote: str
    quote_start: int
    quote_end: int
    support: float
    supported: bool


class PromptTooLongError(ValueError):
    """The question alone does not fit the model's prompt budget (→ 413/422)."""
