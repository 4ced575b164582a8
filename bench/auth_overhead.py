"""What API keys and the audit log cost a search: /v1/search p50/p95, side by side.

    .venv/bin/python bench/auth_overhead.py [--docs 150] [--rounds 300]

One small corpus (the first --docs passages of SQuAD 2.0 in ../shared/eval, uploaded as
Markdown files and indexed by the real worker with the bundled embedder), then one run
that sends the same questions through the real app (httpx TestClient, in process) in three
configurations over the same database and index: authentication off and audit off; auth on
(a key checked on every request) and audit off; auth on and audit on (a row written per
search). The configurations take turns request by request (round robin), so machine noise
hits all three alike. Rate limits are off in all three: they are not what is measured.
TestClient returns only once the app has finished, audit write included, so the audit
figure is its full cost; a real server sends the answer before the row is written.
Prints a Markdown table; writes bench/results/auth_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.container import Container, build_container  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.worker import Worker  # noqa: E402
from data.keys import create_key  # noqa: E402
from data.migrate import upgrade  # noqa: E402
from data.scope import Role  # noqa: E402
from retrieval.embedder import Embedder, SentenceTransformerEmbedder  # noqa: E402
from retrieval.evaluation import load_beir  # noqa: E402

CONFIGS = (
    ("auth off, audit off", False, False),
    ("auth on, audit off", True, False),
    ("auth on, audit on", True, True),
)


def settings_for(home: Path, db_url: str, auth: bool, audit: bool) -> Settings:
    """One configuration over the shared state."""
    return Settings(
        home=home,
        database_url=db_url,
        auth={"enabled": auth},  # type: ignore[arg-type]
        audit={"enabled": audit},  # type: ignore[arg-type]
        rate_limit={"enabled": False},  # type: ignore[arg-type]
        allowed_hosts="testserver",
    )


def build_corpus(container: Container, corpus: dict[str, tuple[str, str]], n: int) -> None:
    """Upload `n` passages through the API and index them with the real worker."""
    with TestClient(create_app(container=container)) as client:
        for i, (title, text) in enumerate(list(corpus.values())[:n]):
            body = f"# {title}\n\n{text}\n".encode()
            r = client.post("/v1/documents", files={"file": (f"p{i:04d}.md", body)})
            assert r.status_code in (200, 202), r.text
    Worker(container).run_until_idle()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    clients: list[tuple[str, TestClient, dict[str, str]]], questions: list[str], rounds: int
) -> dict[str, list[float]]:
    """Milliseconds per search for each configuration, taking turns request by request."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    for _name, client, headers in clients:  # warm-up: first requests load and cache
        for q in questions[:5]:
            assert client.post("/v1/search", json={"query": q}, headers=headers).is_success
    for i in range(rounds):
        q = questions[i % len(questions)]
        # Rotate who goes first, so no configuration always follows the same one.
        turn = clients[i % len(clients) :] + clients[: i % len(clients)]
        for name, client, headers in turn:
            t0 = time.perf_counter()
            r = client.post("/v1/search", json={"query": q}, headers=headers)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.text
    return times


def run(args: argparse.Namespace, embedder: Embedder) -> dict[str, Any]:
    """Build the corpus, measure the three configurations, return the figures."""
    corpus, queries = load_beir(args.eval_dir / "squad2_dev_sample500")
    questions = [q.text for q in queries]
    home = Path(tempfile.mkdtemp(prefix="grounded-auth-bench-"))
    db_url = args.database_url or f"sqlite:///{home / 'grounded.db'}"
    upgrade(db_url)
    containers = {
        name: build_container(settings_for(home, db_url, auth, audit), embedder=embedder)
        for name, auth, audit in CONFIGS
    }
    first = containers[CONFIGS[0][0]]
    t0 = time.perf_counter()
    build_corpus(first, corpus, args.docs)
    built_s = time.perf_counter() - t0
    with first.sessions() as s:
        key = create_key(s, name="bench", role=Role.READER, collections=["default"]).key
    auth_header = {"Authorization": f"Bearer {key}"}
    clients = []
    try:
        for name, auth, _audit in CONFIGS:
            client = TestClient(create_app(container=containers[name]))
            client.__enter__()
            clients.append((name, client, auth_header if auth else {}))
        times = measure(clients, questions, args.rounds)
    finally:
        for _, client, _ in clients:
            client.__exit__(None, None, None)
        for c in containers.values():
            c.close()
    base = statistics.median(times[CONFIGS[0][0]])
    rows = [
        {
            "config": name,
            "requests": len(ms),
            "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(percentile(ms, 0.95), 2),
            "p50_overhead_ms": round(statistics.median(ms) - base, 2),
        }
        for name, ms in times.items()
    ]
    db = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
    return {"docs": args.docs, "build_s": round(built_s, 1), "database": db, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=300, help="searches per configuration")
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "auth_overhead.json")
    args = ap.parse_args()
    result = run(args, SentenceTransformerEmbedder(device="cpu"))
    result["machine"] = f"{platform.machine()}, {platform.python_version()}"
    print(f"\n{result['docs']} passages ({result['database']}), indexed in {result['build_s']} s\n")
    print("| configuration | searches | p50 ms | p95 ms | p50 overhead ms |")
    print("|---|---|---|---|---|")
    for r in result["rows"]:
        print(
            f"| {r['config']} | {r['requests']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['p50_overhead_ms']:+} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
