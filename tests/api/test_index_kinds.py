"""Deletion and replacement end to end with each FAISS index kind the policy can choose.

The tests are the ones from test_documents, test_search_filters and test_sources, run again
here with `exact_max_chunks=0`, so every non-empty collection is switched to IVF at the
worker's checkpoint and all later deletes and replacements are applied to an IVF index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.container import Container
from api.settings import Settings
from api.worker import Worker
from data.models import Collection
from tests.api.test_documents import (  # noqa: F401  (collected again with IVF settings)
    test_delete_hides_at_once_then_removes_everything,
    test_replace_swaps_content,
)
from tests.api.test_search_filters import (  # noqa: F401
    test_filters_narrow_search_inside_the_index,
)
from tests.api.test_sources import (  # noqa: F401
    folder,
    test_add_change_rename_delete_with_the_schedule_firing,
)
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """As conftest's, but every collection with chunks gets an IVF index."""
    (tmp_path / "sources").mkdir()
    return make_settings(
        tmp_path / "home",
        db_url,
        source_roots=str(tmp_path / "sources"),
        retrieval={"exact_max_chunks": 0},
    )


def kinds(container: Container) -> dict[str, str]:
    """Index kind of every collection with chunks."""
    out = {}
    with container.sessions() as s:
        for coll in s.scalars(select(Collection).where(Collection.embedder_dim.is_not(None))):
            assert coll.embedder_dim is not None
            idx = container.indexes.current(s, coll.id, coll.generation, coll.embedder_dim)
            if idx.ntotal:
                out[coll.name] = idx.kind
    return out


@pytest.fixture(autouse=True)
def index_is_ivf(container: Container) -> Iterator[None]:
    """After each test (and its last checkpoint), the indexes with chunks are IVF."""
    yield
    Worker(container, holder="check").checkpoint()
    assert set(kinds(container).values()) <= {"ivf"}


def test_search_after_the_switch_finds_the_same_chunks(
    client: TestClient, run_jobs: Worker, container: Container
) -> None:
    docs = {
        f"d{i}.txt": f"Room {i} holds the {w} archive.\n".encode()
        for i, w in enumerate(["tax", "payroll", "legal", "medical", "design"])
    }
    for name, data in docs.items():
        assert client.post("/v1/documents", files={"file": (name, data)}).status_code == 202
    run_jobs.run_until_idle()
    assert kinds(container) == {"default": "ivf"}
    hits = client.post("/v1/search", json={"query": "payroll archive", "top_k": 1}).json()["hits"]
    assert hits[0]["filename"] == "d1.txt"
