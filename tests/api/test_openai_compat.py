"""OpenAI compatibility with real clients, the OpenAI-compatible backend, 429/503, disconnects."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.container import Container, bounded_chat_model, build_container
from api.settings import Settings
from api.worker import Worker
from data.models import Message
from llm.queue import BoundedChatModel
from llm.types import ChatMessage
from retrieval.embedder import Embedder
from tests.api.test_chat import HANDBOOK
from tests.conftest import LiveServer

QUESTION = "How many days of paid leave does an employee get?"


def index_handbook(url: str, container: Container) -> None:
    r = httpx.post(f"{url}/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
    assert r.status_code == 202
    Worker(container).run_until_idle()


def test_openai_client_chat_models_embeddings(live_server: LiveServer, chat_container) -> None:  # type: ignore[no-untyped-def]
    import openai

    index_handbook(live_server.url, chat_container)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="not-needed")
    resp = client.chat.completions.create(
        model="grounded", messages=[{"role": "user", "content": QUESTION}]
    )
    assert resp.choices[0].message.content
    extra = resp.model_extra or {}
    assert extra["grounded"]["refused"] is False
    assert isinstance(extra["citations"], list)
    assert resp.usage is not None and resp.usage.prompt_tokens > 0

    chunks = list(
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    last = chunks[-1].model_extra or {}
    assert "citations" in last and last["grounded"]["message_id"] > 0
    assert chunks[-1].choices[0].finish_reason == "stop"

    ids = [m.id for m in client.models.list().data]
    assert ids == ["grounded", "default", "llm"]

    emb = client.embeddings.create(model="any", input=["paid leave", "taxi receipts"])
    vecs = np.array([d.embedding for d in emb.data])
    assert vecs.shape == (2, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_langchain_chat_openai(live_server: LiveServer, chat_container) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    index_handbook(live_server.url, chat_container)
    llm = ChatOpenAI(
        base_url=f"{live_server.url}/v1",
        api_key="not-needed",  # type: ignore[arg-type]
        model="grounded",
        max_retries=0,
    )
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm | StrOutputParser()
    assert chain.invoke({"q": QUESTION}).strip()
    refused = llm.invoke("What is the capital of Peru?")
    assert refused.content == "I could not find this in the documents."


def test_openai_backend_against_a_second_grounded(
    live_server: LiveServer,
    settings,
    embedder,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Backend (b): this instance's LLM is another Grounded's /v1/chat/completions ("llm")."""
    from llm.openai_backend import OpenAICompatChatModel
    from tests.conftest import make_settings

    remote = OpenAICompatChatModel(f"{live_server.url}/v1", model="llm", timeout_s=120)
    other = make_settings(tmp_path / "b", settings.db_url.replace("grounded.db", "b.db"))
    from data.migrate import upgrade

    upgrade(other.db_url)
    container = build_container(other, embedder=embedder, chat_model=BoundedChatModel(remote))
    with TestClient(create_app(container=container)) as client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        body = client.post("/v1/chat", json={"message": QUESTION}).json()
        assert body["refused"] is False and body["answer"].strip()
        with container.sessions() as s:
            msg = s.get(Message, body["message_id"])
            assert msg is not None and msg.completion_tokens and msg.completion_tokens > 0
    container.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_llm_down_answers_from_the_evidence(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The evidence is sent before the model runs, so a dead LLM server degrades the answer
    to the evidence quotes (extractive) instead of failing the request; it is logged and
    stored as finish_reason "llm_unavailable". The bare model still answers 503."""
    from llm.openai_backend import OpenAICompatChatModel

    down = OpenAICompatChatModel("http://127.0.0.1:9/v1", model="x", timeout_s=2)
    container = build_container(settings, embedder=embedder, chat_model=BoundedChatModel(down))
    with TestClient(create_app(container=container)) as client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        r = client.post("/v1/chat", json={"message": QUESTION})
        assert r.status_code == 200 and r.json()["mode"] == "extractive"
        assert "thirty days of paid leave" in r.json()["answer"]
        with container.sessions() as s:
            msg = s.get(Message, r.json()["message_id"])
            assert msg is not None and msg.finish_reason == "llm_unavailable"
        r = client.post("/v1/chat", json={"message": QUESTION, "stream": True})
        assert r.status_code == 200
        assert r.text.index("event: evidence") < r.text.index("event: delta")
        assert '"mode": "extractive"' in r.text
        raw = {"model": "llm", "messages": [{"role": "user", "content": "hi"}]}
        r = client.post("/v1/chat/completions", json=raw)
        assert r.status_code == 503 and r.json()["error"] == "llm_unavailable"
        assert "127.0.0.1:9" in r.json()["message"]
    container.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_full_queue_is_429_with_retry_after(settings, embedder, chat_model) -> None:  # type: ignore[no-untyped-def]
    tight = BoundedChatModel(chat_model.inner, max_concurrent=1, max_waiting=0, retry_after_s=7)
    container = build_container(settings, embedder=embedder, chat_model=tight)
    with TestClient(create_app(container=container)) as client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        held = tight.stream([ChatMessage("user", "Count to ten.")], max_tokens=4)
        next(held)  # one generation holds the only slot
        r = client.post("/v1/chat", json={"message": QUESTION})
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error"] == "busy"
        held.close()
        assert client.post("/v1/chat", json={"message": QUESTION}).status_code == 200
    container.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_queue_wait_past_the_limit_answers_from_the_evidence(
    settings, embedder, chat_model
) -> None:  # type: ignore[no-untyped-def]
    """A request still waiting for the model after the limit is not left to time out: it
    gets its extractive answer (finish_reason "busy") well before the client gives up."""
    settings.llm.max_queue_wait_s = 0.5
    bounded = bounded_chat_model(settings, chat_model.inner)  # the session's loaded model
    assert isinstance(bounded, BoundedChatModel) and bounded.max_wait_s == 0.5
    assert bounded.max_waiting == 8  # the default: the wait limit, not a full queue, says no
    container = build_container(settings, embedder=embedder, chat_model=bounded)
    with TestClient(create_app(container=container)) as client:
        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        held = bounded.stream([ChatMessage("user", "Count to ten.")], max_tokens=4)
        next(held)  # one generation holds the only slot past the wait limit
        for stream in (False, True):
            t0 = time.monotonic()
            r = client.post("/v1/chat", json={"message": QUESTION, "stream": stream})
            assert r.status_code == 200 and time.monotonic() - t0 < 30
            assert '"mode": "extractive"' in r.text or r.json()["mode"] == "extractive"
        with container.sessions() as s:
            reasons = [m.finish_reason for m in s.scalars(select(Message)) if m.role == "assistant"]
        assert reasons == ["busy", "busy"]
        assert bounded.waiting == 0
        held.close()
        assert client.post("/v1/chat", json={"message": QUESTION}).status_code == 200
    container.close()


def test_client_disconnect_stops_generation_and_keeps_consistency(
    live_server: LiveServer,
    chat_container: Container,
    chat_model,  # type: ignore[no-untyped-def]
) -> None:
    index_handbook(live_server.url, chat_container)
    payload = {
        "message": "How many days of paid leave do I get? Explain the rules in detail.",
        "stream": True,
    }
    with (
        httpx.Client(timeout=120) as http,
        http.stream("POST", f"{live_server.url}/v1/chat", json=payload) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: delta"):
                break  # the user closes the tab after the first words
    deadline = time.monotonic() + 60
    while True:
        with chat_container.sessions() as s:
            msgs = s.scalars(select(Message).order_by(Message.id)).all()
        if len(msgs) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].finish_reason == "cancelled" and not msgs[1].refused
    while chat_model.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert chat_model.running == 0  # the slot was given back: generation stopped


class SlowChatModel:
    """A scripted model writing one word every `delay_s` until `max_tokens` or `cancel`."""

    model_id = "slow"
    context_window = 8192

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.asked: list[int] = []  # the max_tokens of each call
        self.last_stats = None

    def count_tokens(self, messages) -> int:  # type: ignore[no-untyped-def]
        """About four characters a token."""
        return sum(len(m.content) for m in messages) // 4

    def stream(self, messages, *, max_tokens, temperature=0.0, cancel=None):  # type: ignore[no-untyped-def]
        """`w0 w1 ...`, one word a token."""
        self.asked.append(max_tokens)
        for i in range(max_tokens):
            if cancel is not None and cancel.is_set():
                return
            time.sleep(self.delay_s)
            yield f"w{i} "


def _raw(max_tokens: int | None = None, stream: bool = False) -> dict:
    body: dict = {"model": "llm", "messages": [{"role": "user", "content": "Go on."}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return {**body, "stream": stream}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_max_tokens_is_clamped_to_the_server_cap_everywhere(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The server's max_answer_tokens is the ceiling: a larger max_tokens is clamped (not
    refused) and the header says what the request got; a smaller one is honoured."""
    settings.llm.max_answer_tokens = 8
    model = SlowChatModel()
    container = build_container(settings, embedder=embedder, chat_model=BoundedChatModel(model))
    with TestClient(create_app(container=container)) as client:
        r = client.post("/v1/chat/completions", json=_raw(100_000))
        assert r.status_code == 200 and model.asked[-1] == 8
        assert r.headers["x-grounded-max-tokens"] == "8"
        assert len(r.json()["choices"][0]["message"]["content"].split()) == 8
        r = client.post("/v1/chat/completions", json=_raw(100_000, stream=True))
        assert r.status_code == 200 and model.asked[-1] == 8
        assert r.headers["x-grounded-max-tokens"] == "8"
        r = client.post("/v1/chat/completions", json=_raw(3))
        assert model.asked[-1] == 3 and r.headers["x-grounded-max-tokens"] == "3"
        newer = {**_raw(), "max_completion_tokens": 50_000}
        assert client.post("/v1/chat/completions", json=newer).status_code == 200
        assert model.asked[-1] == 8
        assert client.post("/v1/chat/completions", json=_raw(0)).status_code == 422

        client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
        Worker(container).run_until_idle()
        grounded = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 100_000}
        r = client.post("/v1/chat/completions", json=grounded)
        assert r.status_code == 200 and model.asked[-1] == 8
        assert client.post("/v1/chat", json={"message": QUESTION}).status_code == 200
        assert model.asked[-1] == 8  # /v1/chat takes no max_tokens: always the cap
    container.close()


def _wait_idle(model: BoundedChatModel, within_s: float) -> float:
    """Seconds until no generation holds a slot (fails after `within_s`)."""
    t0 = time.monotonic()
    while model.running:
        assert time.monotonic() - t0 < within_s, "the model slot was not given back"
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_client_that_gives_up_frees_the_model_slot(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """Non-streaming requests whose client disconnects stop generating at once, so the next
    request gets the only slot instead of 429 (before: the answer ran to the end unseen)."""
    settings.llm.max_answer_tokens = 2000  # 2000 words at 20 a second: 100 s
    bounded = BoundedChatModel(SlowChatModel(delay_s=0.05), max_concurrent=1, max_waiting=0)
    container = build_container(settings, embedder=embedder, chat_model=bounded)
    server = LiveServer(container)
    try:
        index_handbook(server.url, container)
        completions = f"{server.url}/v1/chat/completions"
        for url, body in [
            (completions, _raw(100_000)),
            (completions, {"messages": [{"role": "user", "content": QUESTION}]}),
            (f"{server.url}/v1/chat", {"message": QUESTION}),
        ]:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url, json=body, timeout=1.0)
            assert _wait_idle(bounded, within_s=3) < 3
            r = httpx.post(completions, json=_raw(2), timeout=10)
            assert r.status_code == 200, r.text  # not 429: the slot is free
        with container.sessions() as s:
            reasons = [m.finish_reason for m in s.scalars(select(Message)) if m.role == "assistant"]
        assert reasons == ["cancelled", "cancelled"]  # both stored, marked as cut short

        # Streaming stops too when its reader goes away.
        with (
            httpx.Client(timeout=10) as http,
            http.stream("POST", completions, json=_raw(stream=True)) as r,
        ):
            assert r.status_code == 200
            next(r.iter_lines())
        _wait_idle(bounded, within_s=3)
    finally:
        server.stop()
        container.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_real_model_is_capped_and_stops_when_its_client_leaves(
    settings: Settings, embedder: Embedder, chat_model: BoundedChatModel
) -> None:
    """The same with the bundled model: the cap reaches generate(), and a disconnect reaches
    its stopping criteria."""
    tight = BoundedChatModel(chat_model.inner, max_concurrent=1, max_waiting=0)
    container = build_container(settings, embedder=embedder, chat_model=tight)
    server = LiveServer(container)
    url = f"{server.url}/v1/chat/completions"
    count = {"model": "llm", "messages": [{"role": "user", "content": "Count from 1 to 1000."}]}
    try:
        settings.llm.max_answer_tokens = 12
        r = httpx.post(url, json={**count, "max_tokens": 100_000}, timeout=60)
        assert r.status_code == 200 and r.headers["x-grounded-max-tokens"] == "12"
        assert tight.last_stats is not None and 0 < tight.last_stats.completion_tokens <= 12

        settings.llm.max_answer_tokens = 4000  # minutes of generation on a CPU
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json={**count, "max_tokens": 4000}, timeout=1.0)
        assert _wait_idle(tight, within_s=3) < 3
        r = httpx.post(url, json={**count, "max_tokens": 2}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        server.stop()
        container.close()
