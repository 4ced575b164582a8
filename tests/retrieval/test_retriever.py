"""One Retriever behind every caller: CLI, /v1/search, LangChain and chat find the same hits;
a scope hides a collection as if it did not exist."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.chat_service import ChatService
from api.cli import app as cli_app
from api.container import Container
from api.worker import Worker
from data.errors import NotFoundError
from data.repositories import collections_query, get_document
from data.scope import Scope
from data.types import RetrievalMode
from retrieval.langchain import GroundedRetriever

DOCS = {
    "canteen.md": b"# Canteen\n\nOn Fridays the canteen serves fish and chips at noon.\n",
    "parking.md": b"# Parking\n\nVisitors park in the north lot next to the loading bay.\n",
    "leave.md": b"# Leave\n\nEvery employee receives thirty days of paid leave each year.\n",
    "vpn.md": b"# VPN\n\nThe VPN must be on when you work from home or travel abroad.\n",
}
SECRET = b"# Salaries\n\nThe canteen staff salaries are reviewed every March by the board.\n"
QUERY = "what does the canteen serve on fridays"
TOP_K = 3


def _index(client: TestClient, container: Container) -> int:
    for name, data in DOCS.items():
        assert client.post("/v1/documents", files={"file": (name, data)}).status_code == 202
    assert client.post("/v1/collections", json={"name": "secret"}).status_code == 201
    r = client.post(
        "/v1/documents", files={"file": ("pay.md", SECRET)}, data={"collection": "secret"}
    )
    assert r.status_code == 202, r.text
    Worker(container).run_until_idle()
    return int(r.json()["id"])


def test_every_caller_gets_the_same_hits(client: TestClient, container: Container) -> None:
    _index(client, container)
    assert container.retriever.config.mode is RetrievalMode.HYBRID  # the server's default
    body = {"query": QUERY, "top_k": TOP_K}
    http = [
        (h["filename"], round(h["score"], 3))
        for h in client.post("/v1/search", json=body).json()["hits"]
    ]
    assert len(http) == TOP_K and http[0][0] == "canteen.md"

    lc = GroundedRetriever(
        retriever=container.retriever,
        sessions=container.sessions,
        scope=Scope.everything(),
        top_k=TOP_K,
    )
    assert [
        (d.metadata["filename"], round(d.metadata["score"], 3)) for d in lc.invoke(QUERY)
    ] == http

    service = ChatService(container, scope=Scope.everything())
    prepared = service.prepare(QUERY, None, None, top_k=TOP_K)
    sources = service.retrieve(prepared, QUERY, prefer_named=False).sources
    assert [(s.filename, round(s.score, 3)) for s in sources] == http

    env = {
        "GROUNDED_HOME": str(container.settings.home),
        "GROUNDED_DATABASE_URL": container.settings.db_url,
    }
    out = CliRunner().invoke(cli_app, ["search", QUERY, "--top-k", str(TOP_K)], env=env)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.stdout.splitlines() if line[:1].isdigit()]
    assert [
        (ln.split("] ")[1].split()[0], float(ln.split("[")[1].split("]")[0])) for ln in lines
    ] == http


def test_a_scope_hides_a_collection_like_a_missing_one(
    client: TestClient, container: Container
) -> None:
    secret_doc = _index(client, container)
    only_default = Scope.only({"default"})
    with container.sessions() as s:
        everything = container.retriever.search(
            s,
            "canteen staff salaries",
            scope=Scope.everything(),
            collections=["default", "secret"],
            top_k=5,
        )
        assert "pay.md" in {h.filename for h in everything}
        with pytest.raises(NotFoundError, match="'secret' not found"):
            container.retriever.search(
                s,
                "canteen staff salaries",
                scope=only_default,
                collections=["default", "secret"],
                top_k=5,
            )
        hits = container.retriever.search(
            s, "canteen staff salaries", scope=only_default, collections=None, top_k=5
        )
        assert hits and "pay.md" not in {h.filename for h in hits}
        assert [c.name for c in s.scalars(collections_query(scope=only_default))] == ["default"]
        with pytest.raises(NotFoundError):
            get_document(s, secret_doc, scope=only_default)
        assert get_document(s, secret_doc, scope=Scope.only({"secret"})).filename == "pay.md"
    lc = GroundedRetriever(
        retriever=container.retriever,
        sessions=container.sessions,
        scope=only_default,
        collections=["secret"],
    )
    with pytest.raises(NotFoundError):
        lc.invoke("salaries")
    with pytest.raises(NotFoundError):
        ChatService(container, scope=only_default).prepare("salaries?", ["secret"], None)


def test_scope_is_a_required_keyword_everywhere() -> None:
    """A caller that forgets the scope fails (mypy, and at call time), it never sees all."""
    import inspect

    from data import repositories
    from ingest.collections import request_collection_delete
    from ingest.deletion import request_delete
    from ingest.uploads import accept_upload
    from retrieval.retriever import Retriever

    lookups = [
        f
        for name, f in vars(repositories).items()
        if inspect.isfunction(f) and f.__module__ == repositories.__name__
        if not name.startswith("_") and name not in {"check_embedder", "blob_in_use"}
    ]
    assert len(lookups) >= 7
    others = [Retriever.search, Retriever.collections, ChatService.__init__]
    for f in [*lookups, *others, accept_upload, request_delete, request_collection_delete]:
        p = inspect.signature(f).parameters["scope"]
        assert p.kind is p.KEYWORD_ONLY and p.default is p.empty, f.__qualname__
