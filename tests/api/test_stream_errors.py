"""/v1/chat and /v1/chat/completions share one streaming loop: an error mid-stream is an
error event in each wire format and the turn is stored; a prompt too long is a 413."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.container import build_container
from api.settings import Settings
from api.worker import Worker
from data.models import Conversation, Message
from retrieval.embedder import Embedder
from tests.api.test_chat import HANDBOOK
from tests.helpers import ScriptedChatModel

QUESTION = "How many days of paid leave does an employee get?"


class FailingChatModel(ScriptedChatModel):
    """Writes a few words, then its server breaks (an error the answer flow does not absorb)."""

    def stream(self, messages, *, max_tokens, temperature=0.0, cancel=None):  # type: ignore[no-untyped-def]
        """Two words, then a RuntimeError."""
        self.calls += 1
        yield "Every "
        yield "employee "
        raise RuntimeError("the model server broke")


class TinyContextChatModel(ScriptedChatModel):
    """A model whose context window can't hold even the system prompt and the question."""

    context_window = 300  # minus the 256 answer tokens: 44 tokens for the prompt


def _client(settings: Settings, embedder: Embedder, model: ScriptedChatModel):  # type: ignore[no-untyped-def]
    container = build_container(settings, embedder=embedder, chat_model=model)
    return container, TestClient(create_app(container=container))


def _assistant_turns(container) -> list[Message]:  # type: ignore[no-untyped-def]
    with container.sessions() as s:
        return list(s.scalars(select(Message).where(Message.role == "assistant")))


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_an_error_mid_stream_is_an_error_chunk_and_the_turn_is_stored(
    settings: Settings, embedder: Embedder
) -> None:
    container, client = _client(settings, embedder, FailingChatModel("unused"))
    with client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        body = {"model": "grounded", "messages": [{"role": "user", "content": QUESTION}]}
        r = client.post("/v1/chat/completions", json={**body, "stream": True})
        assert r.status_code == 200
        data = [ln[6:] for ln in r.text.splitlines() if ln.startswith("data: ")]
        assert json.loads(data[0])["choices"][0]["delta"]["role"] == "assistant"
        last = json.loads(data[-1])  # no [DONE]: the stream ends on the error
        assert last == {
            "error": {"message": last["error"]["message"], "type": "api_error", "code": "internal"}
        }
        assert "broke" not in last["error"]["message"]  # details stay in the log

        r = client.post("/v1/chat", json={"message": QUESTION, "stream": True})
        assert r.status_code == 200
        events = [ln[7:] for ln in r.text.splitlines() if ln.startswith("event: ")]
        assert events[0] == "evidence" and events[-1] == "error" and "done" not in events
        assert '"error": "internal"' in r.text

    turns = _assistant_turns(container)
    assert [t.finish_reason for t in turns] == ["error", "error"]
    with container.sessions() as s:
        convs = list(s.scalars(select(Conversation)))
        users = list(s.scalars(select(Message).where(Message.role == "user")))
    assert len(convs) == 2 and [u.content for u in users] == [QUESTION, QUESTION]
    container.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_prompt_too_long_is_413_not_500(settings: Settings, embedder: Embedder) -> None:
    container, client = _client(settings, embedder, TinyContextChatModel("unused"))
    with client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        openai = {"model": "grounded", "messages": [{"role": "user", "content": QUESTION}]}
        for path, body in (
            ("/v1/chat", {"message": QUESTION}),
            ("/v1/chat", {"message": QUESTION, "stream": True}),
            ("/v1/chat/completions", openai),
            ("/v1/chat/completions", {**openai, "stream": True}),
        ):
            r = client.post(path, json=body)
            assert r.status_code == 413, (path, r.status_code, r.text)
            assert r.json()["error"] == "prompt_too_long"
            assert "context window" in r.json()["message"]
    container.close()
