"""Load test: concurrent clients against the running server, 90% search and 10% chat.

    .venv/bin/python bench/load.py [--clients 32] [--seconds 60] [--docs 20]

Ingests --docs papers of ../shared/eval/covidqa_200423_docs with `grounded ingest` into a
fresh home, starts `grounded run` (API + worker, bundled LLM, answers capped at 64 tokens),
then --clients clients each send requests back to back for --seconds: a real COVID-QA
question to /v1/search, or with probability --chat-share to /v1/chat, with a 120 s client
timeout. Reports per kind: requests, throughput, latency p50/p95/p99 of the 2xx, 429s
(the bounded LLM queue saying "busy") apart, 5xx and timeouts (both must be 0), and the
server's peak RSS. Prints a Markdown table; writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrieval.evaluation import load_beir  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> int:
    """VmHWM of a process and its children (the worker), in MB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) // 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [p for k in kids for p in (k, *_children(k))]


async def client(
    http: httpx.AsyncClient, questions: list[str], chat_share: float, deadline: float, log: list
) -> None:
    """Requests back to back until the deadline; one record per request."""
    rng = random.Random()
    while time.monotonic() < deadline:
        kind = "chat" if rng.random() < chat_share else "search"
        q = rng.choice(questions)
        body = {"message": q} if kind == "chat" else {"query": q, "top_k": 5}
        t0 = time.perf_counter()
        try:
            r = await http.post(f"/v1/{kind}", json=body)
            log.append((kind, r.status_code, time.perf_counter() - t0))
        except httpx.TimeoutException:
            log.append((kind, "timeout", time.perf_counter() - t0))
        except httpx.HTTPError as exc:
            log.append((kind, f"error:{type(exc).__name__}", time.perf_counter() - t0))


def summarize(log: list, seconds: float) -> dict:
    """Per kind; rates are over the nominal `seconds` (requests in flight at the end are
    waited for and counted, so a 100 s chat doesn't stretch the window)."""
    out = {}
    for kind in ("search", "chat"):
        rows = [r for r in log if r[0] == kind]
        ok = [t for _, code, t in rows if isinstance(code, int) and code < 300]
        ms = np.asarray(ok) * 1000 if ok else np.zeros(1)
        out[kind] = {
            "requests": len(rows),
            "ok": len(ok),
            "per_s": round(len(ok) / seconds, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "429": sum(1 for r in rows if r[1] == 429),
            "5xx": sum(1 for r in rows if isinstance(r[1], int) and r[1] >= 500),
            "other_4xx": sum(1 for r in rows if isinstance(r[1], int) and 400 <= r[1] < 500)
            - sum(1 for r in rows if r[1] == 429),
            "timeouts": sum(1 for r in rows if r[1] == "timeout"),
            "errors": sum(1 for r in rows if isinstance(r[1], str) and r[1] != "timeout"),
        }
    return out


async def load(base: str, questions: list[str], args: argparse.Namespace) -> list:
    log: list = []
    limits = httpx.Limits(max_connections=args.clients)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:
        deadline = time.monotonic() + args.seconds
        await asyncio.gather(
            *(client(http, questions, args.chat_share, deadline, log) for _ in range(args.clients))
        )
    return log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/eval/covidqa_200423_docs")
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--chat-share", type=float, default=0.1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = ap.parse_args()
    corpus, queries = load_beir(args.corpus)
    keep = list(corpus)[: args.docs]
    questions = [q.text for q in queries if set(q.relevant) & set(keep)] or [
        q.text for q in queries
    ]
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for rid in keep:
            title, text = corpus[rid]
            (folder / f"{rid}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        port = free_port()
        env = {**os.environ, "GROUNDED_HOME": str(Path(tmp) / "home")}
        env["GROUNDED_LLM__MAX_ANSWER_TOKENS"] = "64"
        subprocess.run([bin_dir / "grounded", "ingest", str(folder)], env=env, check=True)
        server = subprocess.Popen(
            [bin_dir / "grounded", "run", "--host", "127.0.0.1", "--port", str(port)], env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base, server)
            start = time.monotonic()
            log = asyncio.run(load(base, questions, args))
            wall = time.monotonic() - start
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "clients": args.clients,
        "seconds": args.seconds,
        "wall_s_with_drain": round(wall, 1),
        "chat_share": args.chat_share,
        "documents": len(keep),
        "server_peak_rss_mb": rss,
        **summarize(log, args.seconds),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        "| kind | requests | ok/s | p50 ms | p95 ms | p99 ms | 429 | other 4xx | 5xx | timeouts |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("search", "chat"):
        r = report[kind]
        print(
            f"| {kind} | {r['requests']} | {r['per_s']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['429']} | {r['other_4xx']} | {r['5xx']} | {r['timeouts']} |"
        )
    print(
        f"\n{args.clients} clients for {args.seconds:g} s (the last requests done at "
        f"{report['wall_s_with_drain']} s); server peak RSS {rss} MB"
    )


def _wait(base: str, server: subprocess.Popen, timeout_s: float = 300.0) -> None:
    """Until /healthz answers 200 (the model loads first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError("the server did not come up")


if __name__ == "__main__":
    main()
