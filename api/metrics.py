"""GET /metrics in the Prometheus text format, on a registry of its own per container.

Observed in this process: HTTP requests by route template and status, requests refused
by a rate limit (by budget), retrieval latency
(a hook on the Retriever), LLM queue wait (a hook on the bounded queue), time to first
token, tokens/s and refusals (from each finished answer). Read from SQL at scrape time,
so they hold for the worker's process too: queue depth, documents and chunks per
collection, durations and embedding throughput of the latest finished jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from data import ops_stats
from llm.answer import Final

if TYPE_CHECKING:
    from api.container import Container

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_RATES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_QUANTILES = (0.5, 0.95, 1.0)


class Metrics:
    """The process's instruments on its own registry (apps in one process don't clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "grounded_http_requests", "HTTP requests by route template", labels, registry=r
        )
        self.latency = Histogram(
            "grounded_http_request_duration_seconds",
            "HTTP request latency (until the last body byte)",
            labels,
            buckets=_SECONDS,
            registry=r,
        )
        self.retrieval = Histogram(
            "grounded_retrieval_duration_seconds",
            "Retriever.search latency",
            buckets=_SECONDS,
            registry=r,
        )
        self.llm_wait = Histogram(
            "grounded_llm_queue_wait_seconds",
            "Time a generation waited for a model slot",
            buckets=_SECONDS,
            registry=r,
        )
        self.first_token = Histogram(
            "grounded_llm_time_to_first_token_seconds",
            "From the generation call to its first streamed text",
            buckets=_SECONDS,
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "grounded_llm_tokens_per_second",
            "Completion tokens per second of generation",
            buckets=_RATES,
            registry=r,
        )
        self.answers = Counter(
            "grounded_answers",
            "Finished answers by mode (generated, extractive, refused)",
            ["mode"],
            registry=r,
        )
        self.refusals = Counter("grounded_refusals", "Questions refused", registry=r)
        self.rate_limited = Counter(
            "grounded_rate_limited_requests",
            "Requests refused with 429 by a key's rate limit, by budget (chat, default)",
            ["budget"],
            registry=r,
        )
        for budget in ("chat", "default"):  # exported as 0 from the start, so rate() works
            self.rate_limited.labels(budget)

    def watch_sql(self, sessions: sessionmaker[Session]) -> None:
        """Read the SQL figures at every scrape."""
        self.registry.register(_SqlCollector(sessions))

    def instrument(self, container: Container) -> None:
        """Hook the container's Retriever and model queue (they know nothing of metrics)."""
        from llm.queue import BoundedChatModel

        container.retriever.observe = self.retrieval.observe
        if isinstance(container.chat_model, BoundedChatModel):
            container.chat_model.on_wait = self.llm_wait.observe

    def observe_answer(self, final: Final) -> None:
        """A finished answer: its mode, refusal, time to first token and speed."""
        self.answers.labels(final.mode).inc()
        if final.refused:
            self.refusals.inc()
        stats = final.stats
        if stats is None:
            return
        self.first_token.observe(stats.first_token_s)
        generating = stats.total_s - stats.first_token_s
        if stats.completion_tokens > 1 and generating > 0:
            # The first token came with the first text; the rest over `generating` seconds.
            self.tokens_per_s.observe((stats.completion_tokens - 1) / generating)


class _SqlCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as s:
            depth = ops_stats.queue_depth(s)
            colls = ops_stats.collection_counts(s)
            jobs = ops_stats.recent_job_durations(s)
        queue = GaugeMetricFamily("grounded_jobs", "Jobs queued and running", labels=["status"])
        for status, n in depth.items():
            queue.add_metric([status], n)
        docs = GaugeMetricFamily(
            "grounded_documents", "Documents per collection", labels=["collection"]
        )
        chunks = GaugeMetricFamily(
            "grounded_chunks", "Chunks per collection", labels=["collection"]
        )
        for c in colls:
            docs.add_metric([c.name], c.documents)
            chunks.add_metric([c.name], c.chunks)
        yield from (queue, docs, chunks, *_job_families(jobs))


def _job_families(jobs: list[ops_stats.JobDuration]) -> Iterator[Metric]:
    recent = f"the latest {ops_stats.RECENT_JOBS} finished jobs"
    durations = GaugeMetricFamily(
        "grounded_job_duration_seconds",
        f"Job run time quantiles (1 = the longest) over {recent}",
        labels=["type", "quantile"],
    )
    by_type: dict[str, list[float]] = {}
    for j in jobs:
        by_type.setdefault(j.type, []).append(j.seconds)
    for kind, seconds in sorted(by_type.items()):
        seconds.sort()
        for q in _QUANTILES:
            durations.add_metric([kind, f"{q:g}"], seconds[round(q * (len(seconds) - 1))])
    embedding = [j for j in jobs if j.chunks_embedded > 0]
    busy = sum(j.seconds for j in embedding)
    rate = GaugeMetricFamily(
        "grounded_embed_chunks_per_second",
        f"Chunks embedded per second of job run time over {recent} that embedded any",
        value=sum(j.chunks_embedded for j in embedding) / busy if busy > 0 else 0.0,
    )
    yield durations
    yield rate


class HttpMetrics:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Callable[[Scope], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes the app ends as a 500

        async def watched(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, watched)
        finally:
            metrics = self.metrics(scope)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                labels = (scope["method"], route, str(status))
                metrics.requests.labels(*labels).inc()
                metrics.latency.labels(*labels).observe(time.perf_counter() - started)


def app_metrics(scope: Scope) -> Metrics | None:
    """The metrics of the container the app's lifespan holds (None before it starts)."""
    container = getattr(scope["app"].state, "container", None)
    return getattr(container, "metrics", None)
