"""GET /metrics: the named metrics after a search and chats, and who may read them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.container import Container, bounded_chat_model, build_container
from api.metrics import Metrics
from api.settings import MetricsSettings, Settings
from api.worker import Worker
from data.models import Chunk
from llm.types import ChatMessage, GenerationStats
from retrieval.embedder import Embedder

HANDBOOK = (
    b"# Staff handbook\n\n## Holidays\n\n"
    b"Every employee receives thirty days of paid leave each calendar year. "
    b"Unused leave expires on 31 March of the following year.\n"
)
LOOPBACK = ("127.0.0.1", 50000)
REPLY = ["Employees ", "receive ", "thirty ", "days ", "of ", "paid ", "leave ", "[1]."]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class TimedModel:
    """A scripted model that reports stats as the real backends do."""

    model_id = "timed"
    context_window = 8192

    def __init__(self) -> None:
        self.last_stats: GenerationStats | None = None

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content) for m in messages) // 4

    def stream(self, messages, *, max_tokens, temperature=0.0, cancel=None) -> Iterator[str]:  # type: ignore[no-untyped-def]
        yield from REPLY

        self.last_stats = GenerationStats(
            prompt_tokens=100, completion_tokens=11, first_token_s=0.2, total_s=1.2
        )


@pytest.fixture
def chat_setup(settings: Settings, embedder: Embedder) -> Iterator[Container]:
    model = bounded_chat_model(settings, TimedModel())  # type: ignore[arg-type]
    container = build_container(settings, embedder=embedder, chat_model=model)
    yield container
    container.close()


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_scrape_after_search_and_chat(chat_setup: Container) -> None:
    app = create_app(container=chat_setup)
    with TestClient(app, client=LOOPBACK) as client:
        doc = client.post("/v1/documents", files={"file": ("handbook.md", HANDBOOK)}).json()
        Worker(chat_setup).run_until_idle()
        before = scrape(client)
        assert client.post("/v1/search", json={"query": "paid leave"}).status_code == 200
        assert client.get(f"/v1/documents/{doc['id']}").status_code == 200
        assert client.get("/v1/documents/999999").status_code == 404
        answered = client.post("/v1/chat", json={"message": "How many days of paid leave?"})
        assert answered.json()["refused"] is False
        refused = client.post("/v1/chat", json={"message": "What is the capital of Peru?"})
        assert refused.json()["refused"] is True
        after = scrape(client)

    req = "grounded_http_requests_total"
    assert value(after, req, method="POST", route="/v1/search", status="200") == 1
    assert value(after, req, method="POST", route="/v1/chat", status="200") == 2
    # Route templates, not raw paths: the two document reads share one series.
    doc_route = {"method": "GET", "route": "/v1/documents/{document_id}"}
    assert value(after, req, **doc_route, status="200") == 1
    assert value(after, req, **doc_route, status="404") == 1
    routes = {dict(labels)["route"] for name, labels in after if name == req}
    assert not any(ch.isdigit() for r in routes for ch in r.replace("v1", ""))
    latency = "grounded_http_request_duration_seconds_count"
    assert value(after, latency, method="POST", route="/v1/search", status="200") == 1
    # Scrapes count too: the second saw the first.
    assert value(after, req, method="GET", route="/metrics", status="200") == 1
    assert value(before, req, method="GET", route="/metrics", status="200") == 0

    # The search and each chat's retrieval (a refusal retrieves too).
    grew = {
        name: value(after, name) - value(before, name)
        for name in (
            "grounded_retrieval_duration_seconds_count",
            "grounded_llm_queue_wait_seconds_count",
            "grounded_llm_time_to_first_token_seconds_count",
            "grounded_llm_tokens_per_second_count",
            "grounded_refusals_total",
        )
    }
    assert grew["grounded_retrieval_duration_seconds_count"] >= 3
    # One generation (the rewrite step is skipped without history); the refusal needs none.
    assert grew["grounded_llm_queue_wait_seconds_count"] >= 1
    assert grew["grounded_llm_time_to_first_token_seconds_count"] == 1
    assert grew["grounded_llm_tokens_per_second_count"] == 1
    assert value(after, "grounded_llm_tokens_per_second_sum") == pytest.approx(10.0)
    assert value(after, "grounded_llm_time_to_first_token_seconds_sum") == pytest.approx(0.2)
    assert grew["grounded_refusals_total"] == 1
    assert value(after, "grounded_answers_total", mode="refused") == 1
    assert value(after, "grounded_answers_total", mode="generated") == 1

    # Read from SQL at scrape time.
    with chat_setup.sessions() as s:
        chunks = s.query(Chunk).count()
    assert chunks > 0
    assert value(after, "grounded_documents", collection="default") == 1
    assert value(after, "grounded_chunks", collection="default") == chunks
    assert value(after, "grounded_jobs", status="queued") == 0
    assert ("grounded_jobs", frozenset({("status", "running")})) in after
    durations = [k for k in after if k[0] == "grounded_job_duration_seconds"]
    assert {dict(labels)["quantile"] for _, labels in durations} == {"0.5", "0.95", "1"}
    assert value(after, "grounded_embed_chunks_per_second") > 0


def test_metrics_are_loopback_only_without_a_token(container: Container) -> None:
    app = create_app(container=container)
    with TestClient(app) as remote:  # TestClient's client address is "testclient"
        r = remote.get("/metrics")
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    with TestClient(app, client=LOOPBACK) as local:
        assert local.get("/metrics").status_code == 200
    with TestClient(app, client=("::1", 1)) as local6:
        assert local6.get("/metrics").status_code == 200


def test_metrics_token_is_required_when_set(container: Container) -> None:
    settings = container.settings.model_copy(
        update={"metrics": MetricsSettings(token="s3cret-token")}
    )
    container.settings = settings
    app = create_app(container=container)
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/metrics").status_code == 403  # loopback is not enough now
        bad = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 403 and bad.json()["error"] == "forbidden"
    with TestClient(app) as remote:
        good = remote.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert good.status_code == 200 and "grounded_http_requests_total" in good.text


def test_each_container_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()  # on one global registry the second would be refused
    a.refusals.inc()
    assert a.refusals._value.get() == 1 and b.refusals._value.get() == 0
