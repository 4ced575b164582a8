"""Wire models of folder sources, jobs and rebuilds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import DbId, UtcDatetime


class SourceIn(BaseModel):
    """A folder to mirror into a collection, re-synced on a cron schedule."""

    path: str = Field(description="absolute folder path under GROUNDED_SOURCE_ROOTS")
    schedule: str | None = Field(None, description="cron, e.g. '0 * * * *'; null = on demand")
    timezone: str = Field("UTC", description="IANA zone the schedule is read in")
    include: list[str] | None = Field(None, description="globs, default ['**/*']")
    exclude: list[str] | None = Field(None, description="globs, default: hidden and temp files")
    paused: bool = False
    prefix: str | None = Field(None, max_length=200, description="document name prefix")


class SourcePatch(BaseModel):
    """Changes to a source; omitted fields stay as they are (schedule null = on demand)."""

    schedule: str | None = None
    timezone: str | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    paused: bool | None = None


class SourceOut(BaseModel):
    """A watched folder and its schedule (times in UTC)."""

    id: int
    collection: str
    path: str
    prefix: str
    schedule: str | None
    timezone: str
    include: list[str]
    exclude: list[str]
    paused: bool
    next_run_at: UtcDatetime | None
    last_run_at: UtcDatetime | None
    last_job_id: int | None
    documents: int


class JobIn(BaseModel):
    """Run a job now: re-sync a collection's folders (or just one of them)."""

    type: Literal["reindex"]
    collection: str = "default"
    source_id: DbId | None = None


class RebuildIn(BaseModel):
    """Re-embed a collection with the model in a local folder ('default' = the configured one)."""

    embedding_model: str = Field(min_length=1, max_length=1024)


class JobOut(BaseModel):
    """A job's state; `progress` holds its counters and up to 100 file errors."""

    id: int
    type: str
    status: str
    collection: str | None
    document_id: int | None
    source_id: int | None
    attempts: int
    progress: dict[str, Any]
    error: str | None
    worker: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
