"""Chat with the real bundled LLM: answers, checked citations, refusal, streaming, SQL."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.container import Container
from api.worker import Worker
from data.models import Chunk, CitationRecord, Message
from llm.answer import REFUSAL

HANDBOOK = (
    b"# Staff handbook\n\n## Holidays\n\n"
    b"Every employee receives thirty days of paid leave each calendar year. "
    b"Unused leave expires on 31 March of the following year.\n\n"
    b"## Expenses\n\nTaxi receipts must be submitted within two weeks of travel.\n"
)


def index_handbook(client: TestClient, container: Container) -> int:
    r = client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)})
    Worker(container).run_until_idle()
    return int(r.json()["id"])


def check_citations(body: dict, container: Container) -> None:
    """Every [n] in the answer names a returned citation whose quote is in its chunk."""
    indices = {c["index"] for c in body["citations"]}
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert markers <= indices
    with container.sessions() as s:
        for c in body["citations"]:
            chunk = s.get(Chunk, c["chunk_id"])
            assert chunk is not None and c["quote"] in chunk.text
            assert 0.0 <= c["support"] <= 1.0
            # Only backed sentences are shown (drop mode), so every citation is supported.
            assert c["supported"] is True


def test_answer_is_stored_and_read_back(chat_client: TestClient, chat_container: Container) -> None:
    index_handbook(chat_client, chat_container)
    r = chat_client.post("/v1/chat", json={"message": "How many days of paid leave do I get?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refused"] is False and body["answer"].strip()
    check_citations(body, chat_container)
    conv = chat_client.get(f"/v1/conversations/{body['conversation_id']}").json()
    user, assistant = conv["messages"]
    assert user["role"] == "user" and user["content"] == "How many days of paid leave do I get?"
    assert assistant["id"] == body["message_id"] and assistant["content"] == body["answer"]
    assert assistant["model"] and assistant["prompt_tokens"] > 0
    assert assistant["completion_tokens"] > 0 and assistant["latency_ms"] >= 0
    assert assistant["citations"] == body["citations"]
    listed = chat_client.get("/v1/conversations").json()
    assert [c["id"] for c in listed["items"]] == [body["conversation_id"]]


def test_nothing_relevant_is_refused_without_the_llm(
    chat_client: TestClient, chat_container: Container
) -> None:
    index_handbook(chat_client, chat_container)
    model = chat_container.chat_model
    before = model.last_stats  # type: ignore[union-attr]
    r = chat_client.post("/v1/chat", json={"message": "What is the capital of Peru?"}).json()
    assert r["refused"] is True and r["answer"] == REFUSAL and r["citations"] == []
    assert model.last_stats is before  # type: ignore[union-attr]  # the LLM was not called
    with chat_container.sessions() as s:
        msg = s.get(Message, r["message_id"])
        assert msg is not None and msg.refused and msg.finish_reason == "refused"


def test_empty_collection_refuses(chat_client: TestClient) -> None:
    r = chat_client.post("/v1/chat", json={"message": "Anything at all?"}).json()
    assert r["refused"] is True


def test_stream_sends_deltas_then_done(chat_client: TestClient, chat_container: Container) -> None:
    index_handbook(chat_client, chat_container)
    events = []
    with chat_client.stream(
        "POST", "/v1/chat", json={"message": "When are taxi receipts due?", "stream": True}
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for block in r.iter_text():
            events.append(block)
    raw = "".join(events)
    parsed = [
        (m.group(1), json.loads(m.group(2)))
        for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", raw)
    ]
    kinds = [k for k, _ in parsed]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "delta" in kinds
    # Evidence first, before any text of the answer: a quote the user can read at once.
    assert kinds[0] == "evidence" and kinds.count("evidence") == 1
    quote = parsed[0][1]["quotes"][0]
    assert "Taxi receipts must be submitted within two weeks" in quote["quote"]
    assert quote["filename"] == "handbook.md" and quote["heading"]
    assert HANDBOOK.decode()[quote["doc_start"] : quote["doc_end"]] == quote["quote"]
    done = parsed[-1][1]
    assert done["mode"] in ("generated", "extractive")
    assert done["refused"] is False and done["message_id"] > 0
    check_citations(done, chat_container)
    stored = chat_client.get(f"/v1/conversations/{done['conversation_id']}").json()
    assert stored["messages"][1]["content"] == done["answer"]


def test_follow_up_is_rewritten_with_the_history(
    chat_client: TestClient, chat_container: Container
) -> None:
    index_handbook(chat_client, chat_container)
    first = chat_client.post("/v1/chat", json={"message": "How much paid leave is there?"})
    conv = first.json()["conversation_id"]
    second = chat_client.post(
        "/v1/chat", json={"message": "and when does it expire?", "conversation_id": conv}
    ).json()
    assert second["conversation_id"] == conv
    with chat_container.sessions() as s:
        msg = s.get(Message, second["message_id"])
        assert msg is not None and msg.query
        assert msg.query != "and when does it expire?"  # rewritten into a standalone question
    messages = chat_client.get(f"/v1/conversations/{conv}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_citations_survive_deleting_the_document(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The evidence path does not depend on what the model says: a scripted answer is used."""
    from api.app import create_app
    from api.container import build_container
    from tests.helpers import ScriptedChatModel

    scripted = ScriptedChatModel("Employees receive thirty days of paid leave each year [1].")
    container = build_container(settings, embedder=embedder, chat_model=scripted)
    with TestClient(create_app(container=container)) as client:
        doc_id = index_handbook(client, container)
        body = client.post("/v1/chat", json={"message": "How much paid leave?"}).json()
        assert [c["supported"] for c in body["citations"]] == [True]
        client.delete(f"/v1/documents/{doc_id}")
        Worker(container).run_until_idle()
        stored = client.get(f"/v1/conversations/{body['conversation_id']}").json()
    cites = stored["messages"][1]["citations"]
    assert len(cites) == 1 and cites[0]["chunk_id"] is None
    old = body["citations"][0]
    assert old["chunk_id"] is not None and "thirty days of paid leave" in cites[0]["quote"]
    keys = ("filename", "quote", "heading", "support", "index", "page_start")
    assert {k: cites[0][k] for k in keys} == {k: old[k] for k in keys}
    # The document is gone, so its id is too: a stale id could name a later upload.
    assert old["document_id"] == doc_id and cites[0]["document_id"] is None
    with container.sessions() as s:
        row = s.scalars(select(CitationRecord)).one()
        assert row.doc_start is not None and row.doc_end is not None
        assert HANDBOOK.decode()[row.doc_start : row.doc_end] == row.quote
    container.close()


def test_bad_chat_input(chat_client: TestClient) -> None:
    assert chat_client.post("/v1/chat", json={"message": "   "}).status_code == 422
    assert chat_client.post("/v1/chat", json={}).status_code == 422
    r = chat_client.post("/v1/chat", json={"message": "hi", "conversation_id": 999})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = chat_client.post("/v1/chat", json={"message": "hi", "collections": ["nope"]})
    assert r.status_code == 404
    assert chat_client.get("/v1/conversations/999").status_code == 404
