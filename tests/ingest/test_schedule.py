"""Cron schedules: next run in a time zone, and the scheduler merging missed runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from data.errors import ConflictError, ForbiddenError, InvalidInputError
from data.jobs import JobStatus
from data.leases import WRITER, try_acquire
from data.models import Collection, Job, Source
from ingest.scheduler import tick
from ingest.sources import SourceSpec, create_source, next_run, update_source

T0 = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)


def test_next_run_reads_the_schedule_in_its_time_zone() -> None:
    assert next_run("0 * * * *", "UTC", T0) == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    # 09:00 in Shanghai (UTC+8) is 01:00 UTC; at 06:30 UTC that is tomorrow's.
    assert next_run("0 9 * * *", "Asia/Shanghai", T0) == datetime(2026, 11, 23, 1, tzinfo=UTC)
    # Across the US spring-forward, 09:00 New York moves from 14:00 to 13:00 UTC.
    before = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    assert next_run("0 9 * * *", "America/New_York", before) == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )
    assert next_run(None, "UTC", T0) is None


def _collection(s: Session) -> Collection:
    coll = s.scalar(select(Collection).where(Collection.name == "default"))
    assert coll is not None
    return coll


def test_source_validation(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    roots = [tmp_path / "allowed"]
    (tmp_path / "allowed" / "docs" / "inner").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "allowed" / "escape").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "allowed" / "file.txt").write_text("x")
    good = str(tmp_path / "allowed" / "docs")
    cases: list[tuple[SourceSpec, list[Path], type[Exception], str]] = [
        (SourceSpec(path=good), [], ForbiddenError, "GROUNDED_SOURCE_ROOTS"),
        (SourceSpec(path=str(tmp_path / "elsewhere")), roots, ForbiddenError, "not under"),
        (SourceSpec(path=str(tmp_path / "allowed/escape")), roots, ForbiddenError, "not under"),
        (SourceSpec(path=str(tmp_path / "allowed/../elsewhere")), roots, ForbiddenError, "not"),
        (SourceSpec(path="allowed/docs"), roots, InvalidInputError, "absolute"),
        (SourceSpec(path=str(tmp_path / "allowed/file.txt")), roots, InvalidInputError, "folder"),
        (SourceSpec(path=good, schedule="61 * * * *"), roots, InvalidInputError, "cron"),
        (SourceSpec(path=good, timezone="Mars/Base"), roots, InvalidInputError, "time zone"),
        (SourceSpec(path=good, include=["../*"]), roots, InvalidInputError, "glob"),
    ]
    with sessions() as s:
        coll = _collection(s)
        for spec, rts, exc, words in cases:
            with pytest.raises(exc, match=words):
                create_source(s, coll, spec, rts, T0)
        src, job = create_source(s, coll, SourceSpec(path=good, schedule="*/15 * * * *"), roots, T0)
        assert src.prefix == "docs" and job.source_id == src.id
        assert src.next_run_at is not None
        # Nested folders in one collection would index files twice.
        inner = SourceSpec(path=good + "/inner", prefix="inner")
        with pytest.raises(ConflictError, match="overlaps"):
            create_source(s, coll, inner, roots, T0)


def test_tick_merges_missed_runs_and_skips_paused_and_busy_sources(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with sessions() as s:
        assert try_acquire(s, WRITER, "w", 30)
        coll = _collection(s)
        a, first_a = create_source(
            s, coll, SourceSpec(path=str(tmp_path / "a"), schedule="*/5 * * * *"), [tmp_path], T0
        )
        b, first_b = create_source(
            s, coll, SourceSpec(path=str(tmp_path / "b"), schedule="*/5 * * * *"), [tmp_path], T0
        )
        for j in (first_a, first_b):
            j.status = JobStatus.SUCCEEDED.value
        update_source(s, b, SourceSpec(paused=True), T0)
        a_id = a.id
    # The worker was down for three hours: 36 runs missed, one job queued.
    later = T0 + timedelta(hours=3, seconds=7)
    with sessions() as s:
        queued = tick(s, later, holder="w", ttl_s=30)
    assert len(queued) == 1
    with sessions() as s:
        src = s.get(Source, a_id)
        assert src is not None and src.next_run_at is not None
        assert src.next_run_at.replace(tzinfo=UTC) == datetime(2026, 11, 22, 9, 35, tzinfo=UTC)
        job = s.get(Job, queued[0])
        assert job is not None and job.source_id == a_id
    # Still queued when the next run is due: no second job piles up behind it.
    with sessions() as s:
        assert tick(s, later + timedelta(minutes=10), holder="w", ttl_s=30) == []
        open_jobs = s.scalars(select(Job).where(Job.status == JobStatus.QUEUED.value)).all()
        assert [j.id for j in open_jobs] == queued
