"""Access fuzz: random keys × roles × grants × every reading endpoint, on SQLite and
PostgreSQL; no response may reveal a document, chunk, citation, filename, folder or
collection outside the key's grants, and probing another collection's objects answers
exactly as probing a missing one.

Each collection's documents, filenames and watched folder carry a unique secret token;
every response body (streams included) is searched for the tokens, and the names, of the
collections the key may not read. The chat model is scripted (the real one is tested in
test_chat.py): what could leak here is retrieval, evidence and citations, not its words.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container, bounded_chat_model, build_container
from api.worker import Worker
from data.keys import create_key
from data.models import Collection, Conversation, Document, Job, Source
from data.scope import Role
from retrieval.embedder import Embedder
from tests.conftest import make_settings
from tests.helpers import ScriptedChatModel

SEED = 15
N_KEYS = 8
COLLECTIONS = {"col-kiwi": "qzkiwi7", "col-lime": "qzlime3", "col-plum": "qzplum5"}
QUESTION = "How many days of paid leave do employees get?"


@dataclass
class Key:
    header: dict[str, str]
    role: Role
    grants: set[str]
    key_id: int


@dataclass
class World:
    client: TestClient
    container: Container
    admin: dict[str, str]
    documents: dict[int, str]  # id → collection
    sources: dict[int, str]
    jobs: dict[int, str]


@pytest.fixture
def world(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[World]:
    """Three collections, two documents and a watched folder each, every name marked."""
    roots = tmp_path / "sources"
    settings = make_settings(
        tmp_path / "home", db_url, auth={"enabled": True}, source_roots=str(roots)
    )
    model = bounded_chat_model(settings, ScriptedChatModel("Employees get thirty days [1]."))
    container = build_container(settings, embedder=embedder, chat_model=model)
    with container.sessions() as s:
        admin = {"Authorization": f"Bearer {create_key(s, name='setup', role=Role.ADMIN).key}"}
    with TestClient(create_app(container=container)) as client:
        for name, secret in COLLECTIONS.items():
            assert client.post("/v1/collections", json={"name": name}, headers=admin).is_success
            for i in range(2):
                text = f"# {secret} handbook {i}\n\nEmployees get thirty days of paid leave. "
                text += f"Code {secret}-{i} applies to the {secret} team.\n"
                files = {"file": (f"{secret}-policy-{i}.md", text.encode())}
                r = client.post(
                    "/v1/documents", files=files, data={"collection": name}, headers=admin
                )
                assert r.status_code == 202, r.text
            folder = roots / f"{secret}-folder"
            folder.mkdir(parents=True)
            body = {"path": str(folder)}
            r = client.post(f"/v1/collections/{name}/sources", json=body, headers=admin)
            assert r.status_code == 201, r.text
        Worker(container).run_until_idle()
        with container.sessions() as s:
            names = {c.id: c.name for c in s.query(Collection)}
            docs = {d.id: names[d.collection_id] for d in s.query(Document)}
            srcs = {x.id: names[x.collection_id] for x in s.query(Source)}
            jobs = {j.id: names[j.collection_id] for j in s.query(Job)}
        yield World(client, container, admin, docs, srcs, jobs)
    container.close()


def _make_keys(world: World, rng: random.Random) -> list[Key]:
    keys = []
    for i in range(N_KEYS):
        role = rng.choice(list(Role))
        grants = set(rng.sample(sorted(COLLECTIONS), rng.randint(1, len(COLLECTIONS))))
        everything = role is Role.ADMIN and rng.random() < 0.5
        with world.container.sessions() as s:
            new = create_key(
                s, name=f"fuzz-{i}", role=role, collections=None if everything else sorted(grants)
            )
        grants = set(COLLECTIONS) | {"default"} if everything else grants
        keys.append(Key({"Authorization": f"Bearer {new.key}"}, role, grants, new.row.id))
    return keys


class Audit:
    """Sends requests and searches each answer for what the key may not see."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.requests = 0
        self.endpoints: set[str] = set()
        self.leaks: list[str] = []
        self.seen = 0  # answers that showed the key a secret it may see

    def send(self, key: Key, method: str, path: str, endpoint: str, **kw: object) -> object:
        r = self.client.request(method, path, headers=key.header, **kw)  # type: ignore[arg-type]
        self.requests += 1
        self.endpoints.add(endpoint)
        sent = f"{path} {kw.get('json', '')}"
        self.seen += any(COLLECTIONS[n] in r.text for n in key.grants if n in COLLECTIONS)
        for name, secret in COLLECTIONS.items():
            if name in key.grants:
                continue
            # A collection's name echoed in a 404 the caller asked for reveals nothing.
            for marker in (secret, *([] if name in sent else [name])):
                if marker in r.text:
                    self.leaks.append(f"{endpoint} {method} {path}: {marker} ({r.status_code})")
        return r


def _chat_all(audit: Audit, key: Key) -> None:
    for name in COLLECTIONS:
        for stream in (False, True):
            body = {"message": QUESTION, "collections": [name], "stream": stream}
            audit.send(key, "POST", "/v1/chat", "chat-stream" if stream else "chat", json=body)
            oai = {"model": f"grounded/{name}", "stream": stream}
            oai["messages"] = [{"role": "user", "content": QUESTION}]
            ep = "oai-chat-stream" if stream else "oai-chat"
            audit.send(key, "POST", "/v1/chat/completions", ep, json=oai)
        search = {"query": QUESTION, "collections": [name]}
        audit.send(key, "POST", "/v1/search", "search", json=search)


def _probe(audit: Audit, key: Key, path: str, endpoint: str, owner: str | None) -> None:
    """An object of a collection the key may not read answers as a missing one: 404."""
    r = audit.send(key, "GET", path, endpoint)
    if owner is not None and owner not in key.grants and r.status_code != 404:  # type: ignore[attr-defined]
        audit.leaks.append(f"{endpoint} {path}: {r.status_code} for another collection's object")  # type: ignore[attr-defined]
    missing = audit.send(key, "GET", re.sub(r"/\d+(/|$)", r"/2000000\1", path), endpoint)
    hidden = owner is not None and owner not in key.grants
    if hidden and r.status_code != missing.status_code:  # type: ignore[attr-defined]
        audit.leaks.append(f"{endpoint} {path}: differs from a missing object")


def _read_all(audit: Audit, world: World, key: Key, owners: dict[int, int | None]) -> None:
    editor = key.role.at_least(Role.EDITOR)
    for path, ep in (
        ("/v1/models", "models"),
        ("/v1/collections", "collections"),
        ("/v1/documents", "documents"),
        ("/v1/conversations", "conversations"),
    ):
        audit.send(key, "GET", path, ep)
    audit.send(key, "POST", "/v1/embeddings", "embeddings", json={"input": "leave"})
    for name in COLLECTIONS:
        audit.send(key, "GET", f"/v1/collections/{name}", "collection")
        audit.send(key, "GET", f"/v1/documents?collection={name}", "documents")
        audit.send(key, "GET", f"/v1/jobs?collection={name}", "jobs")
        r = audit.send(key, "GET", f"/v1/collections/{name}/sources", "sources")
        if not editor:  # a reader may not see sources or jobs at all
            assert r.status_code == 403, r.text  # type: ignore[attr-defined]
    for doc, owner in world.documents.items():
        _probe(audit, key, f"/v1/documents/{doc}", "document", owner)
        _probe(audit, key, f"/v1/documents/{doc}/original", "original", owner)
        _probe(audit, key, f"/v1/documents/{doc}/passage?start=0&end=40", "passage", owner)
        _probe(audit, key, f"/v1/documents/{doc}/pages/1/image", "page-image", owner)
    for cid, owner_key in owners.items():  # another key's is a 404 even with the same grants
        r = audit.send(key, "GET", f"/v1/conversations/{cid}", "conversation")
        expected = 200 if owner_key == key.key_id else 404
        if r.status_code != expected:  # type: ignore[attr-defined]
            audit.leaks.append(f"conversation {cid} of key {owner_key}: {r.status_code}")  # type: ignore[attr-defined]
    if editor:
        audit.send(key, "GET", "/v1/jobs", "jobs")
        for job, owner in world.jobs.items():
            _probe(audit, key, f"/v1/jobs/{job}", "job", owner)
        for src, owner in world.sources.items():
            _probe(audit, key, f"/v1/sources/{src}", "source", owner)


def test_no_key_sees_outside_its_grants(world: World, db_url: str) -> None:
    rng = random.Random(SEED)
    keys = _make_keys(world, rng)
    audit = Audit(world.client)
    for key in keys:
        _chat_all(audit, key)
    with world.container.sessions() as s:
        conversations = {c.id: c.key_id for c in s.query(Conversation)}
    for key in keys:
        _read_all(audit, world, key, conversations)
    roles = Counter(k.role.value for k in keys)
    summary = (
        f"access fuzz ({db_url.split(':')[0]}): {audit.requests} requests, "
        f"{len(audit.endpoints)} endpoints, {len(keys)} keys {dict(roles)}, "
        f"{len(conversations)} conversations, {audit.seen} answers with granted secrets, "
        f"leaks={len(audit.leaks)}"
    )
    print(summary)
    assert audit.leaks == [], summary + "\n" + "\n".join(audit.leaks[:20])
    # The search must reach real answers, or finding no secret would prove nothing.
    assert audit.seen > 100 and len(conversations) >= N_KEYS, summary
