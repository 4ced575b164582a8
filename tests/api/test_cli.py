"""`grounded ingest` and `grounded search` as a user runs them (real subprocesses, SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def grounded(
    home: Path | None, *args: str, cwd: Path = ROOT, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m api.cli ARGS` with GROUNDED_HOME=home (None: unset, as a new user runs it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("GROUNDED_DATABASE_URL", "GROUNDED_HOME", "GROUNDED_DEBUG"):
        env.pop(name, None)
    if home is not None:
        env["GROUNDED_HOME"] = str(home)
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_folder_then_search(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "menu.md").write_text("# Canteen\n\nOn Fridays the canteen serves fish and chips.\n")
    (docs / "sub" / "it.txt").write_text("Reset your password at the IT desk in room 12.\n")
    (docs / "sub" / "blank.txt").write_text("   \n")
    (docs / "sub" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    home = tmp_path / "home"

    out = grounded(home, "ingest", str(docs))
    # A refused and a failed file make the exit status non-zero, the rest still indexes.
    assert out.returncode == 1, out.stderr[-2000:]
    assert "2 indexed, 1 failed" in out.stdout
    assert "refused" in out.stderr and "photo.png" in out.stderr
    assert "blank.txt: no_text" in out.stderr

    out = grounded(home, "search", "what is served on friday", "--top-k", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"using state at {home.resolve()}" in out.stderr  # says which state it reads
    assert "menu.md" in out.stdout and "Canteen" in out.stdout and "fish and chips" in out.stdout

    out = grounded(home, "ask", "What does the canteen serve on Fridays?")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() and "(conversation 1)" in out.stderr
    assert "evidence [1] menu.md" in out.stdout  # the quote comes before the answer
    assert "(generated)" in out.stdout or "(extractive)" in out.stdout
    out = grounded(home, "ask", "What is the capital of Peru?")
    assert "I could not find this in the documents." in out.stdout and "(refused)" in out.stdout
    # Extractive only (no model): the evidence quote is the answer, with its citation.
    out = grounded(home, "ask", "What is served on Fridays?", GROUNDED_ANSWER__GENERATE="false")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fish and chips. [1]" in out.stdout and "(extractive)" in out.stdout

    again = grounded(home, "ingest", str(docs / "menu.md"))
    assert again.returncode == 0 and "0 indexed, 0 failed" in again.stdout  # unchanged: no-op


def test_reindex_syncs_a_registered_folder_and_reports(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from data.db import make_engine, make_sessionmaker
    from data.migrate import upgrade
    from data.models import Collection
    from ingest.sources import SourceSpec, create_source

    home, share = tmp_path / "home", tmp_path / "share"
    share.mkdir()
    (share / "menu.md").write_text("# Canteen\n\nOn Fridays the canteen serves fish and chips.\n")
    (share / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    home.mkdir()
    url = f"sqlite:///{home / 'grounded.db'}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        coll = s.scalar(select(Collection).where(Collection.name == "default"))
        assert coll is not None
        create_source(s, coll, SourceSpec(path=str(share)), [tmp_path], datetime.now(UTC))
    engine.dispose()

    out = grounded(home, "reindex")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 files: 1 added, 0 changed, 0 renamed, 0 deleted, 0 unchanged, 1 skipped" in out.stdout
    assert "share/photo.png: unsupported_type" in out.stderr

    (share / "menu.md").unlink()
    out = grounded(home, "reindex", "--collection", "default")
    assert out.returncode == 0 and "1 deleted" in out.stdout, out.stdout
    out = grounded(home, "reindex", "--collection", "nope")
    assert out.returncode != 0 and "not found" in out.stderr


def test_read_only_commands_never_create_state(tmp_path: Path) -> None:
    """`grounded search` without GROUNDED_HOME used to start an empty ./var silently."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = grounded(None, "search", "anything", cwd=elsewhere)
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: no Grounded state at {elsewhere / 'var'}; set GROUNDED_HOME")
    )
    assert not (elsewhere / "var").exists()
    out = grounded(tmp_path / "missing", "ask", "anything")
    assert out.returncode == 1 and f"no Grounded state at {tmp_path / 'missing'}" in out.stderr
    assert not (tmp_path / "missing").exists()


def test_errors_are_one_line_unless_debugging(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad_db = {"GROUNDED_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    out = grounded(home, "migrate", **bad_db)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: OperationalError: ") and "127.0.0.1" in last, last
    assert "using state at" in out.stderr and "nobody@127.0.0.1:1/none" in out.stderr
    for debug in (
        grounded(home, "migrate", GROUNDED_DEBUG="1", **bad_db),
        grounded(home, "--debug", "migrate", **bad_db),
    ):
        assert debug.returncode == 1 and "Traceback" in debug.stderr

    assert grounded(home, "migrate").returncode == 0
    out = grounded(home, "search", "anything", "--collection", "nope")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.strip().splitlines()[-1] == "error: collection 'nope' not found"

    out = grounded(tmp_path / "fresh", "ingest", str(tmp_path / "no-such-file.md"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "does not exist" in out.stderr
    assert not (tmp_path / "fresh").exists()  # refused before any state was made
