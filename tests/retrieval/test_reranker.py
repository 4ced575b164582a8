"""The optional cross-encoder: a tiny one built offline in the test; off when not configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import build_container
from api.worker import Worker
from retrieval.reranker import CrossEncoderReranker
from tests.conftest import make_settings
from tests.helpers import save_tiny_bert

MENU = "# Note {i}\n\nThe canteen menu number {i} lists soup, bread and tea.\n"
DOCS = {f"note-{i}.md": MENU.format(i=i).encode() for i in range(6)}


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer BERT cross-encoder: arbitrary but deterministic relevance scores."""
    dest = tmp_path_factory.mktemp("reranker") / "tiny-ce"
    # Wide initial weights spread the scores, so the order is far from ties.
    return save_tiny_bert(dest, num_labels=1, init_range=0.5)


def search(client: TestClient, top_k: int = 3) -> list[dict]:
    body = {"query": "what is on the canteen menu", "top_k": top_k}
    return client.post("/v1/search", json=body).json()["hits"]


def test_reranker_reorders_the_dense_pool_and_keeps_cosine(
    tmp_path: Path,
    db_url: str,
    embedder,
    tiny_cross_encoder: Path,  # type: ignore[no-untyped-def]
) -> None:
    plain = build_container(make_settings(tmp_path / "a", db_url), embedder=embedder)
    assert plain.reranker is None  # none configured: dense order, no rerank score
    with TestClient(create_app(container=plain)) as client:
        for name, data in DOCS.items():
            client.post("/v1/documents", files={"file": (name, data)})
        Worker(plain).run_until_idle()
        dense = search(client, top_k=6)
    plain.close()
    assert all(h["rerank_score"] is None for h in dense)

    rerank = {"model_path": str(tiny_cross_encoder), "top_n": 6, "device": "cpu"}
    settings = make_settings(tmp_path / "a", db_url, rerank=rerank)
    container = build_container(settings, embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        hits = search(client, top_k=3)
    container.close()
    # The reranker saw the 6 best dense hits and its own order decides the top 3.
    expected = CrossEncoderReranker(tiny_cross_encoder, device="cpu").score(
        "what is on the canteen menu", [h["text"] for h in dense]
    )
    # Ties (the sigmoid saturates) break like the API: higher cosine, then lower chunk id.
    order = sorted(
        range(len(dense)), key=lambda i: (-expected[i], -dense[i]["score"], dense[i]["chunk_id"])
    )
    best = [dense[i]["chunk_id"] for i in order[:3]]
    assert [h["chunk_id"] for h in hits] == best
    assert best != [h["chunk_id"] for h in dense[:3]]  # it really re-ordered
    cosine = {h["chunk_id"]: h["score"] for h in dense}
    assert all(h["score"] == pytest.approx(cosine[h["chunk_id"]]) for h in hits)
    assert [h["rerank_score"] for h in hits] == sorted(
        (h["rerank_score"] for h in hits), reverse=True
    )


def test_missing_reranker_folder_is_a_clear_error(tmp_path: Path, db_url: str, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, rerank={"model_path": str(tmp_path / "nope")})
    with pytest.raises(FileNotFoundError, match="reranker model folder not found"):
        build_container(settings, embedder=embedder)
