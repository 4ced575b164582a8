"""The `grounded` command line: run, serve, worker, migrate, ingest, reindex, search, ask,
keys, audit."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from api.audit_cli import app as audit_app
from api.cli_common import DEBUG_ENV, load_settings, run_cli
from api.keys_cli import app as keys_app
from api.settings import Settings

app = typer.Typer(add_completion=False, help="Grounded: answers from your own documents.")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
log = logging.getLogger("grounded")


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help=f"full tracebacks on errors (or {DEBUG_ENV}=1)")
    ] = False,
) -> None:
    """Grounded: answers from your own documents."""
    if debug:
        os.environ[DEBUG_ENV] = "1"  # also reaches the worker `run` starts


def _setup(verbose: bool = False, *, create: bool = True, service: bool = False) -> Settings:
    """Logging, offline mode and the settings; `create=False` for commands that only read.
    Logs are JSON lines for a `service` (serve, worker) unless GROUNDED_LOG_FORMAT says."""
    from api.request_log import configure_logging
    from api.settings import LogFormat

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = load_settings(create=create)
    fmt = settings.log_format
    json_lines = fmt is LogFormat.JSON or (fmt is LogFormat.AUTO and service)
    configure_logging(json_lines=json_lines, level=logging.DEBUG if verbose else logging.INFO)
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

    from api.app import create_app, server_options

    settings = _setup(service=True)
    settings.host = host or settings.host  # authentication off is refused off loopback
    settings.port = port or settings.port
    uvicorn.run(create_app(settings), **server_options(settings))


@app.command()
def worker(
    parent_pid: Annotated[int, typer.Option(hidden=True, help="exit when it dies")] = 0,
) -> None:
    """Run the single writer: jobs, index checkpoints (standby if another holds the lease)."""
    from api.container import build_container
    from api.supervisor import die_with_parent, skip_final_gc
    from api.worker import Worker

    if parent_pid:
        die_with_parent(parent_pid)
    container = build_container(_setup(service=True))
    w = Worker(container)
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the job, release the lease, exit
        signal.signal(sig, lambda *_: w.stop())
    try:
        w.run_forever()
    finally:
        container.close()
        skip_final_gc()


@app.command()
def run(host: str | None = None, port: int | None = None) -> None:
    """Migrate, serve the API beside a supervised worker; SIGTERM or Ctrl-C stops both."""
    from api.app import check_bind
    from api.supervisor import WorkerSupervisor, exit_on_signals, ignore_signals, skip_final_gc

    settings = Settings()
    settings.host = host or settings.host
    check_bind(settings)  # before the worker starts: refused off loopback without auth
    exit_on_signals()
    migrate()
    argv = [sys.executable, "-m", "api.cli", "worker", "--parent-pid", str(os.getpid())]
    supervisor = WorkerSupervisor(argv)
    try:
        supervisor.start()
        serve(host=host, port=port)
    finally:
        ignore_signals()
        supervisor.stop()
        skip_final_gc()


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

    files = _files(paths)  # a wrong path is refused before any state is touched
    settings = _setup()
    from data.migrate import upgrade

    upgrade(settings.db_url)
    container = build_container(settings)
    try:
        ok = ingest_paths(
            container, files, collection=collection, password=password, replace=replace
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
    """Search and print the best chunks (the same search as /v1/search)."""
    from api.container import build_container
    from data.scope import Scope

    container = build_container(_setup(create=False))
    with container.sessions() as s:
        start = time.perf_counter()
        hits = container.retriever.search(
            s, query, scope=Scope.everything(), collections=collection, top_k=top_k
        )
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
    from data.scope import Scope
    from llm.answer import Delta, Evidence

    container = build_container(_setup(create=False), with_llm=True)
    try:
        service = ChatService(container, scope=Scope.everything())  # the CLI is the admin
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
    run_cli(app)


if __name__ == "__main__":
    main()
