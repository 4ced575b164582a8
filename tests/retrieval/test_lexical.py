"""The BM25 index: derived from SQL, kept in step by the writer, fused with dense search."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.container import Container, build_container
from api.settings import Settings
from api.worker import Worker
from data.models import Chunk, Collection, Document
from llm.refusal import RefusalPolicy, lexical_coverage
from llm.types import Source
from retrieval.embedder import Embedder
from retrieval.lexical import LexicalStore
from retrieval.search import RRF_K, Filters, Fusion, Hit, search
from retrieval.tokenize import VERSION
from tests.helpers import ScriptedChatModel

DOCS = {
    "zh.md": "# 战国\n\n《战国无双3》是由光荣和ω-force合作开发的游戏。\n".encode(),
    "tw.md": "# 醫學\n\n臺灣的醫學研究在亞洲領先。\n".encode(),
    "en.md": b"# Pumps\n\nThe XJ-900 centrifugal pump needs a gasket every 2000 hours.\n",
    "other.md": b"# Canteen\n\nOn Fridays the canteen serves fish and chips.\n",
}


def setup(client: TestClient, container: Container) -> Collection:
    for name, data in DOCS.items():
        assert client.post("/v1/documents", files={"file": (name, data)}).status_code == 202
    Worker(container).run_until_idle()
    with container.sessions() as s:
        coll = s.scalar(select(Collection).where(Collection.name == "default"))
        assert coll is not None
        return coll


def filenames(container: Container, coll: Collection, query: str) -> list[str]:
    found = container.lexical.search(coll.id, coll.generation, query, 10)
    with container.sessions() as s:
        names = dict(
            s.execute(
                select(Chunk.id, Document.filename).join(Document, Document.id == Chunk.document_id)
            ).all()
        )
    return [names[c] for c, _ in found]


def test_words_find_their_chunks_in_any_script(client: TestClient, container: Container) -> None:
    coll = setup(client, container)
    assert filenames(container, coll, "谁开发了战国无双？") == ["zh.md"]
    assert filenames(container, coll, "台湾医学") == ["tw.md"]  # Simplified query, Traditional text
    assert filenames(container, coll, "xj-900 gasket") == ["en.md"]
    assert filenames(container, coll, "qwertyuiop") == []


def test_the_writer_keeps_it_in_step_with_sql(client: TestClient, container: Container) -> None:
    coll = setup(client, container)
    doc_id = client.get("/v1/documents").json()["items"][2]["id"]  # en.md
    client.delete(f"/v1/documents/{doc_id}")
    client.post("/v1/documents", files={"file": ("new.md", b"# New\n\nThe gasket shop opens.\n")})
    Worker(container).run_until_idle()
    assert filenames(container, coll, "gasket") == ["new.md"]
    with container.sessions() as s:
        rows = s.scalar(select(func.count()).select_from(Chunk))
        # Replaying the same tail again (a crash before the stamp was written) adds nothing.
        (container.lexical.path(coll.id, 1) / "grounded.seq").write_text(f"v{VERSION} 1")
        assert container.lexical.sync(s, coll.id, 1) is True
    fresh = LexicalStore(container.lexical.directory)
    assert len(fresh.search(coll.id, 1, "gasket shop opens fridays canteen", 50)) <= rows
    assert [c for c, _ in fresh.search(coll.id, 1, "gasket", 10)] == [
        c for c, _ in container.lexical.search(coll.id, 1, "gasket", 10)
    ]


def test_an_index_from_another_tokenizer_version_is_rebuilt(
    client: TestClient, container: Container
) -> None:
    coll = setup(client, container)
    stamp = container.lexical.path(coll.id, 1) / "grounded.seq"
    head = stamp.read_text().split()[1]
    stamp.write_text(f"v{VERSION - 1} {head}")  # as an older release left it
    assert container.lexical.stamp(coll.id, 1) == 0
    with container.sessions() as s:
        assert container.lexical.sync(s, coll.id, 1) is True
    assert stamp.read_text() == f"v{VERSION} {head}"
    # Built with today's terms: inflected forms meet their stems.
    assert filenames(container, coll, "pumping gaskets") == ["en.md"]
    assert filenames(container, coll, "the friday canteen") == ["other.md"]


def test_hybrid_finds_what_dense_misses_and_keeps_cosine(
    client: TestClient, container: Container
) -> None:
    coll = setup(client, container)
    query = "XJ-900"  # a part number: a word to BM25, noise to a sentence embedding
    args = (container.indexes, container.embedders, query, [coll], 1)
    with container.sessions() as s:
        hybrid = search(s, *args, lexical=container.lexical)
        only_zh = search(s, *args, Filters(filename="zh.md"), lexical=container.lexical)
    assert hybrid[0].filename == "en.md"
    assert -1.0 <= hybrid[0].score <= 1.0  # still the cosine, whatever found it
    assert [h.filename for h in only_zh] == ["zh.md"]  # filters bind BM25 too


def test_fusion_weights_the_lists_and_k_sets_how_fast_ranks_decay() -> None:
    dense, bm25 = [1, 2, 3], [3, 4]

    def order(f: Fusion) -> list[int]:
        scores = f.scores(dense, bm25)
        return sorted(scores, key=lambda c: -scores[c])

    assert Fusion(1.0, 60).scores(dense, bm25)[3] == pytest.approx(1 / 63 + 1 / 61)
    assert order(Fusion(1.0, 60)) == [3, 1, 2, 4]  # in both lists beats first in one
    assert order(Fusion(0.25, 60)) == [3, 4, 1, 2]  # BM25 leads, dense breaks ties
    # A small k makes rank 1 count for much more than rank 2: dense's first beats BM25's second.
    assert order(Fusion(0.75, 1))[:2] == [3, 1]
    assert order(Fusion(0.75, 60))[:2] == [3, 4]


def test_fusion_specs_parse() -> None:
    assert Fusion.parse("0.5") == Fusion(0.5, RRF_K)
    assert Fusion.parse("0.5:10") == Fusion(0.5, 10)
    for bad in ("", "x", "0.5:ten"):
        with pytest.raises(ValueError):
            Fusion.parse(bad)


RANKED_OUT = {
    # The closest in meaning to the query, without one of its words.
    "x.md": b"# Breakdown\n\nThe automobile would not turn over; its battery was dead.\n",
    # Shares the query's words, means something else.
    "y.md": b"# Rules\n\nCar park rules: the car wash opens at nine.\n",
}
QUERY = "car engine failure"


def _source(h: Hit) -> Source:
    return Source(1, h.chunk_id, h.document_id, h.filename, None, None, h.heading, h.text, h.score)


def test_refusal_sees_the_best_cosine_even_when_fusion_ranks_it_out(
    settings: Settings, embedder: Embedder
) -> None:
    scripted = ScriptedChatModel("The battery was dead [1].")
    container = build_container(settings, embedder=embedder, chat_model=scripted)
    with TestClient(create_app(container=container)) as client:
        for name, data in RANKED_OUT.items():
            client.post("/v1/documents", files={"file": (name, data)})
        Worker(container).run_until_idle()
        with container.sessions() as s:
            coll = s.scalar(select(Collection).where(Collection.name == "default"))
            args = (container.indexes, container.embedders, QUERY, [coll], 1)
            dense = search(s, *args)
            hybrid = search(s, *args, lexical=container.lexical)
        # The premise: dense puts x first, fusion (BM25 matches "car") keeps only y.
        assert [h.filename for h in dense] == ["x.md"]
        assert [h.filename for h in hybrid] == ["y.md"]
        assert hybrid.best_score == dense[0].score > hybrid[0].score
        # A threshold between the scores the two cosines give: the chat must not refuse
        # because of the ranking (the lexical part is the same either way).
        rule = RefusalPolicy().latin
        cov = lexical_coverage(QUERY, [_source(hybrid[0])])
        between = (rule.score(dense[0].score, cov) + rule.score(hybrid[0].score, cov)) / 2
        container.settings.llm.refusal_threshold = between
        r = client.post("/v1/chat", json={"message": QUERY, "top_k": 1}).json()
        assert r["refused"] is False and r["mode"] != "refused"
    container.close()
