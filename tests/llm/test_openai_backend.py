"""OpenAICompatChatModel against a real local HTTP server streaming canned OpenAI SSE."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llm.openai_backend import OpenAICompatChatModel, estimate_tokens
from llm.types import ChatMessage, LLMUnavailableError

MSGS = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "Capital of France?")]
DELTAS = ["The ", "capital ", "is ", "Paris."]


def _chunk(content: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"object": "chat.completion.chunk", "choices": []}
    if content is not None:
        body["choices"] = [{"index": 0, "delta": {"content": content}}]
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    """Routes by path prefix: /ok, /nousage, /error, /junk, /slow, /stall, /hang."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, dict(self.headers), json.loads(body)))
        kind = self.path.split("/")[1]
        if kind == "error":
            self._send(500, b'{"error": "model crashed"}', "application/json")
            return
        if kind == "stall":
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for piece in self._script(kind):
                self.wfile.write(piece)
                self.wfile.flush()
                self.server.sent += 1
                if kind == "slow":
                    time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()

    def _script(self, kind: str) -> Iterator[bytes]:
        if kind == "junk":
            yield _chunk("Hi")
            yield b"data: {not json\n\n"
            return
        if kind == "slow":
            for i in range(200):
                yield _chunk(f"t{i} ")
            return
        if kind == "hang":  # one delta, then a long silence (a stalled or overloaded server)
            yield _chunk("Hi")
            time.sleep(10)
            yield _chunk(" there")
            return
        yield b": keep-alive comment\n\n"
        for delta in DELTAS:
            yield _chunk(delta)
        yield _chunk(None)  # a chunk without content (e.g. finish_reason only)
        if kind == "ok":
            yield _chunk(usage={"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25})
        yield b"data: [DONE]\n\n"

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, dict[str, str], dict[str, Any]]]
    sent: int
    disconnected: threading.Event


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    """A canned OpenAI-compatible server on 127.0.0.1, on a free port."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests, srv.sent, srv.disconnected = [], 0, threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _model(server: _Server, kind: str, **kwargs: Any) -> OpenAICompatChatModel:
    host, port = server.server_address[:2]
    return OpenAICompatChatModel(f"http://{host!s}:{port}/{kind}/v1", model="m1", **kwargs)


def test_streamed_deltas_concatenate_and_usage_becomes_stats(server: _Server) -> None:
    model = _model(server, "ok", api_key="sk-test")
    deltas = list(model.stream(MSGS, max_tokens=32, temperature=0.2))
    assert deltas == DELTAS
    assert model.last_stats is not None
    assert (model.last_stats.prompt_tokens, model.last_stats.completion_tokens) == (21, 4)
    assert 0 <= model.last_stats.first_token_s <= model.last_stats.total_s
    path, headers, payload = server.requests[-1]
    assert path == "/ok/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert payload["model"] == "m1" and payload["stream"] is True
    assert payload["max_tokens"] == 32 and payload["temperature"] == 0.2
    assert payload["messages"][1] == {"role": "user", "content": "Capital of France?"}
    assert model.model_id == "m1"


def test_stats_are_estimated_without_usage(server: _Server) -> None:
    model = _model(server, "nousage", stream_usage=False)
    assert "".join(model.stream(MSGS, max_tokens=32)) == "The capital is Paris."
    assert "stream_options" not in server.requests[-1][2]
    assert model.last_stats is not None
    assert model.last_stats.prompt_tokens == model.count_tokens(MSGS)
    assert model.last_stats.completion_tokens == estimate_tokens("The capital is Paris.")


def test_token_estimate_is_conservative_and_grows() -> None:
    model = OpenAICompatChatModel("http://127.0.0.1:9", model="m")
    short = model.count_tokens([ChatMessage("user", "hello")])
    long = model.count_tokens([ChatMessage("user", "hello " * 100)])
    assert 0 < short < long
    assert long >= 600 / 4  # at least what a ~4 chars/token tokenizer would need
    assert estimate_tokens("日本語") == 3  # non-ASCII characters count one token each


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAICompatChatModel(f"http://127.0.0.1:{port}/v1", model="m")
    with pytest.raises(LLMUnavailableError, match=f"127.0.0.1:{port}"):
        list(model.stream(MSGS, max_tokens=8))


def test_server_error_is_unavailable(server: _Server) -> None:
    with pytest.raises(LLMUnavailableError, match="HTTP 500.*model crashed"):
        list(_model(server, "error").stream(MSGS, max_tokens=8))


def test_malformed_stream_is_unavailable(server: _Server) -> None:
    stream = _model(server, "junk").stream(MSGS, max_tokens=8)
    assert next(stream) == "Hi"
    with pytest.raises(LLMUnavailableError, match="malformed"):
        next(stream)


def test_timeout_is_unavailable(server: _Server) -> None:
    with pytest.raises(LLMUnavailableError, match="timed out"):
        list(_model(server, "stall", timeout_s=0.3).stream(MSGS, max_tokens=8))


def test_cancel_stops_reading_and_closes_the_connection(server: _Server) -> None:
    server.sent = 0
    server.disconnected.clear()
    cancel = threading.Event()
    model = _model(server, "slow")
    got = []
    for delta in model.stream(MSGS, max_tokens=200, cancel=cancel):
        got.append(delta)
        if len(got) == 3:
            cancel.set()
    assert got == ["t0 ", "t1 ", "t2 "]
    assert server.disconnected.wait(5)  # the server saw the client go away
    assert server.sent < 50  # and stopped long before its 200 chunks
    assert model.last_stats is not None and model.last_stats.completion_tokens > 0


def test_cancel_wakes_a_read_blocked_on_a_silent_server(server: _Server) -> None:
    """Cancelling must not wait for the server's next line (or the read timeout): the
    connection is cut, the stream ends quietly with what it had, and its slot is free."""
    cancel = threading.Event()
    model = _model(server, "hang", timeout_s=30)
    stream = model.stream(MSGS, max_tokens=8, cancel=cancel)
    assert next(stream) == "Hi"
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - t0 < 2  # not the server's 10 s silence
    assert model.last_stats is not None and model.last_stats.completion_tokens > 0
