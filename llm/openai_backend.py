"""A chat model served by any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, TGI)."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import httpx

from llm.types import ChatMessage, GenerationStats, LLMUnavailableError

__all__ = ["OpenAICompatChatModel", "estimate_tokens"]

log = logging.getLogger(__name__)

# No tokenizer is available for a remote model, so counts are estimates that err high:
# English BPE averages ~4 characters per token, we assume 3.5; non-ASCII characters
# (CJK, emoji) are counted as one token each. Chat templates add a few tokens per turn.
_CHARS_PER_TOKEN = 3.5
_TOKENS_PER_MESSAGE = 4
_TOKENS_FOR_REPLY = 3
_CANCEL_POLL_S = 0.05  # how often a running stream looks at its `cancel` event


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for `text` (see the module note)."""
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    return math.ceil((len(text) - non_ascii) / _CHARS_PER_TOKEN) + non_ascii


class OpenAICompatChatModel:
    """Streams `/chat/completions` over HTTP; token counts are conservative estimates."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        context_window: int = 8192,
        model_id: str = "",
        stream_usage: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.model_id = model_id or model
        self.context_window = context_window
        # Some servers reject `stream_options`; usage is then estimated.
        self.stream_usage = stream_usage
        self.last_stats: GenerationStats | None = None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Estimated prompt tokens of `messages` (no tokenizer for a remote model)."""
        per_message = (_TOKENS_PER_MESSAGE + estimate_tokens(m.content) for m in messages)
        return sum(per_message) + _TOKENS_FOR_REPLY

    def _payload(
        self, messages: Sequence[ChatMessage], max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        """The JSON body of a streamed chat completion."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if self.stream_usage:
            payload["stream_options"] = {"include_usage": True}
        return payload

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Text deltas as the server sends them; stops reading once `cancel` is set."""
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        usage: dict[str, Any] = {}
        payload = self._payload(messages, max_tokens, temperature)
        try:
            with (
                self._client.stream("POST", self.url, json=payload) as response,
                _abort_on(cancel, response),
            ):
                self._check_status(response)
                for delta in self._deltas(response, usage, cancel):
                    first = first if first is not None else time.perf_counter() - start
                    parts.append(delta)
                    yield delta
                    if cancel is not None and cancel.is_set():
                        break  # leaving the `with` closes the response: the server sees it
        except httpx.HTTPError as exc:
            if cancel is None or not cancel.is_set():
                raise _unavailable(self.url, exc) from exc
            # Cancelled: `_abort_on` cut the connection; what was read is the answer.
        total = time.perf_counter() - start
        self.last_stats = GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or self.count_tokens(messages)),
            completion_tokens=int(
                usage.get("completion_tokens") or estimate_tokens("".join(parts))
            ),
            first_token_s=first if first is not None else total,
            total_s=total,
        )

    def _check_status(self, response: httpx.Response) -> None:
        """Any non-2xx answer is a backend failure (a bad model name or key is config)."""
        if response.is_success:
            return
        body = response.read().decode("utf-8", "replace")[:300]
        raise LLMUnavailableError(
            f"LLM server at {self.url} answered HTTP {response.status_code}: {body}"
        )

    def _deltas(
        self, response: httpx.Response, usage: dict[str, Any], cancel: threading.Event | None
    ) -> Iterator[str]:
        """Content deltas from the SSE body; fills `usage` when the server sends it."""
        for line in response.iter_lines():
            if cancel is not None and cancel.is_set():
                return
            if not line.startswith("data:"):
                continue  # blank separators, `event:`/`id:` fields and `:` comments
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = self._parse_chunk(data)
            if isinstance(chunk.get("usage"), dict):
                usage.update(chunk["usage"])
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                content = delta.get("content") if isinstance(delta, dict) else None
                if content:
                    yield str(content)

    def _parse_chunk(self, data: str) -> dict[str, Any]:
        """One SSE `data:` payload as a dict; errors and junk become LLMUnavailableError."""
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise LLMUnavailableError(
                f"LLM server at {self.url} sent malformed stream data: {data[:200]!r}"
            ) from exc
        if not isinstance(chunk, dict):
            raise LLMUnavailableError(
                f"LLM server at {self.url} sent unexpected data: {data[:200]!r}"
            )
        if chunk.get("error"):
            raise LLMUnavailableError(f"LLM server at {self.url} reported: {chunk['error']}")
        return chunk


def _unavailable(url: str, exc: httpx.HTTPError) -> LLMUnavailableError:
    """The backend failure an HTTP error means."""
    if isinstance(exc, httpx.TimeoutException):
        return LLMUnavailableError(f"LLM server at {url} timed out: {exc}")
    return LLMUnavailableError(f"LLM server at {url} is unreachable: {type(exc).__name__}: {exc}")


@contextmanager
def _abort_on(cancel: threading.Event | None, response: httpx.Response) -> Iterator[None]:
    """While the body is read, a set `cancel` shuts the connection down.

    Checking `cancel` between lines is not enough: a silent server (a long prompt, a stall)
    would keep the read blocked, and the model slot taken, until the read timeout.
    Shutting the socket down wakes the blocked read at once.
    """
    if cancel is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(_CANCEL_POLL_S):
            if cancel.is_set():
                _shutdown(response)
                return

    watcher = threading.Thread(target=watch, daemon=True, name="llm-http-cancel")
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _shutdown(response: httpx.Response) -> None:
    """Shut down the response's socket both ways, if the transport exposes it."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
