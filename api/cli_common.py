"""What every `grounded` command shares: which state it uses, and one-line errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from sqlalchemy.engine import make_url

from api.settings import Settings
from data.errors import DomainError

DEBUG_ENV = "GROUNDED_DEBUG"


class CLIError(Exception):
    """A usage problem the CLI explains in one line (no traceback, exit status 1)."""


def debug_enabled() -> bool:
    """Whether tracebacks are wanted (`--debug` sets GROUNDED_DEBUG=1 for this process)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def load_settings(*, create: bool) -> Settings:
    """The service's settings, chosen as the server chooses them (GROUNDED_* variables,
    else ./var); says on stderr which state it uses.

    With `create` False (commands that only read) a missing state is refused, naming the
    path, instead of silently starting an empty one there.
    """
    settings = Settings()
    home = settings.home.resolve()
    if not create:
        missing = _missing_state(settings)
        if missing is not None:
            raise CLIError(
                f"no Grounded state at {missing}; set GROUNDED_HOME to the state directory "
                "the server uses (default: ./var where it was started), or ingest first"
            )
    where = f"using state at {home}"
    if settings.database_url:
        where += f", database {make_url(settings.database_url).render_as_string()}"
    typer.echo(where, err=True)
    if create:
        settings.home.mkdir(parents=True, exist_ok=True)
    return settings


def _missing_state(settings: Settings) -> Path | None:
    """The state directory, or the SQLite file, that does not exist (None: both do)."""
    home = settings.home.resolve()
    if not home.is_dir():
        return home
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).resolve()
        if not db.is_file():
            return db
    return None


def one_line(exc: BaseException) -> str:
    """The error as one line: a domain or CLI error's message, else type and first line."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, CLIError):
        return str(exc)
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def run_cli(app: typer.Typer) -> None:
    """Run `app`: an error is one line, `error: <message>`, and exit status 1;
    `--debug` or GROUNDED_DEBUG=1 shows the traceback instead."""
    try:
        app()
    except Exception as exc:
        if debug_enabled():
            raise
        typer.echo(f"error: {one_line(exc)}", err=True)
        sys.exit(1)
