"""The `grounded` command line: run, serve, worker, migrate, ingest, reindex, search, ask."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from api.settings import Settings

app = typer.Typer(add_completion=False, help="Grounded: answers from your own documents.")
log = logging.getLogger("grounded")


def _setup(verbose: bool = False) -> Settings:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from data.migrate import upgrade

    upgrade(_setup().db_url)


@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the HTTP API only (no worker)."""
    import uvicorn

    from api.app import create_app

    settings = _setup()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@app.command()
def worker() -> None:
    """Run the single writer: jobs, index checkpoints (standby if another holds the lease)."""
    from api.container import build_container
    from api.worker import Worker

    container = build_container(_setup())
    w = Worker(container)
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    try:
        w.run_forever()
    except KeyboardInterrupt:
        w.stop()
    finally:
        container.close()


@app.command()
def run(host: str | None = None, port: int | None = None) -> None:
    """Migrate, start the worker beside a single-process API, stop both together."""
    migrate()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"])
    try:
        serve(host=host, port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _files(paths: list[Path]) -> list[tuple[Path, str]]:
    """Files to ingest with their document names: paths relative to a given folder."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file())
            out.extend((f, f.relative_to(p).as_posix()) for f in found)
        elif p.is_file():
            out.append((p, p.name))
        else:
            raise typer.BadParameter(f"{p} does not exist")
    return out


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (recursive)")],
    collection: str = "default",
    password: str | None = None,
    replace: bool = False,
) -> None:
    """Upload files and folders and index them, with a progress bar."""
    from api.container import build_container
    from api.ingest_cli import ingest_paths

    settings = _setup()
    from data.migrate import upgrade

    upgrade(settings.db_url)
    container = build_container(settings)
    try:
        ok = ingest_paths(
            container, _files(paths), collection=collection, password=password, replace=replace
        )
    finally:
        container.close()
    raise typer.Exit(0 if ok else 1)


@app.command()
def reindex(
    collection: str = "default",
    source: Annotated[int | None, typer.Option(help="only this folder source")] = None,
) -> None:
    """Re-sync a collection's watched folders now, with a progress bar."""
    from api.container import build_container
    from api.reindex_cli import reindex_collection
    from data.migrate import upgrade

    settings = _setup()
    upgrade(settings.db_url)
    container = build_container(settings)
    try:
        ok = reindex_collection(container, collection, source)
    finally:
        container.close()
    raise typer.Exit(0 if ok else 1)


@app.command(name="eval")
def evaluate(
    beir_dir: Annotated[
        list[Path],
        typer.Argument(help="corpus.jsonl, queries.jsonl, qrels/test.tsv; several are merged"),
    ],
    collection: Annotated[str | None, typer.Option(help="throw-away collection name")] = None,
    k: Annotated[str, typer.Option(help="cut-offs, e.g. 1,5,10")] = "1,5,10",
    limit: Annotated[int | None, typer.Option(help="a random sample of N queries per set")] = None,
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="where JSON + Markdown go")] = None,
    keep: Annotated[bool, typer.Option(help="keep the collection afterwards")] = False,
    modes: Annotated[
        str, typer.Option(help="retrieval modes to compare: dense, hybrid, hybrid@WEIGHT[:K]")
    ] = "dense,hybrid",
) -> None:
    """Score retrieval on a labelled set: hit@k, recall@k, MRR@10, nDCG@10, latency.

    Several sets are ingested into one collection and each is scored on its own questions,
    the others' documents acting as distractors."""
    from api.container import build_container
    from api.eval_cli import markdown, parse_mode, run_eval
    from data.migrate import upgrade

    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    for m in mode_list:
        try:
            parse_mode(m)
        except ValueError:
            raise typer.BadParameter(f"{m!r}: use dense, hybrid or hybrid@WEIGHT[:K]") from None
    settings = _setup()
    upgrade(settings.db_url)
    ks = sorted({int(x) for x in k.split(",") if x.strip()})
    container = build_container(settings)
    try:
        report = run_eval(
            container,
            beir_dir,
            collection=collection,
            ks=ks,
            limit=limit,
            seed=seed,
            out_dir=out or settings.home / "eval",
            keep=keep,
            modes=mode_list,
        )
    finally:
        container.close()
    typer.echo(markdown(report))
    typer.echo(
        f"{report['documents']} documents, {report['chunks']} chunks, "
        f"ingested in {report['ingest_seconds']} s",
        err=True,
    )


@app.command()
def search(
    query: str,
    collection: Annotated[list[str] | None, typer.Option()] = None,
    top_k: int = 5,
) -> None:
    """Search and print the best chunks."""
    from api.container import build_container
    from ingest.uploads import check_embedder, get_collection
    from retrieval.search import search as run_search

    container = build_container(_setup())
    with container.sessions() as s:
        colls = [get_collection(s, n) for n in (collection or ["default"])]
        for c in colls:
            check_embedder(container.embedders, c)
        start = time.perf_counter()
        hits = run_search(s, container.indexes, container.embedders, query, colls, top_k)
        took = (time.perf_counter() - start) * 1000
    for i, h in enumerate(hits, 1):
        pages = f" p.{h.page_start}" if h.page_start else ""
        typer.echo(f"{i}. [{h.score:.3f}] {h.filename}{pages} {h.heading or ''}".rstrip())
        typer.echo("   " + h.text[:300].replace("\n", " "))
    typer.echo(f"{len(hits)} hit(s) in {took:.0f} ms", err=True)
    container.close()


@app.command()
def ask(
    question: str,
    collection: Annotated[list[str] | None, typer.Option()] = None,
    conversation: Annotated[int | None, typer.Option(help="continue this conversation")] = None,
) -> None:
    """Ask a question; the answer streams to the terminal, then its checked citations."""
    from api.chat_service import ChatService
    from api.container import build_container
    from llm.answer import Delta, Evidence

    container = build_container(_setup(), with_llm=True)
    try:
        service = ChatService(container)
        prepared = service.prepare(question, collection, conversation)
        final = None
        for event in service.run(prepared):
            if isinstance(event, Evidence):
                for q in event.quotes:
                    typer.echo(f'  evidence [{q.index}] {q.source.filename}: "{q.quote[:160]}"')
            elif isinstance(event, Delta):
                typer.echo(event.text, nl=False)
            else:
                final = event
        assert final is not None
        if final.refused:
            typer.echo(final.answer, nl=False)
        typer.echo(f"\n({final.mode})")
        for u in final.unverified if service.config.unsupported.value == "mark" else []:
            typer.echo(f"  unverified ({u.reason}): {u.text}")
        for c in final.citations:
            mark = "✓" if c.supported else "✗ unsupported"
            pages = f" p.{c.source.page_start}" if c.source.page_start else ""
            typer.echo(
                f"  [{c.index}] {c.source.filename}{pages} {mark} ({c.support:.2f}): "
                f'"{c.quote[:160]}"'
            )
        stored = service.store(prepared, final)
        typer.echo(f"(conversation {stored.conversation_id})", err=True)
    finally:
        container.close()


def main() -> None:
    """Entry point of the `grounded` script."""
    app()


if __name__ == "__main__":
    main()
