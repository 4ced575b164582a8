"""The parse sandbox with real child processes and the misbehaving parsers in sandbox_parsers."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from ingest.errors import CorruptError, EncryptedError, ParseTimeoutError
from ingest.parsers.pdf import parse
from ingest.sandbox import parse_in_subprocess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"
PARSERS = "tests.ingest.sandbox_parsers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def pid_file(tmp_path: Path) -> tuple[str, Path]:
    """A data file whose content is the path the test parsers write their pid to."""
    pid_path = tmp_path / "pid"
    data_path = tmp_path / "data"
    data_path.write_text(str(pid_path))
    return str(data_path), pid_path


def _run(func: str, data_path: str, **kwargs: object) -> object:
    options: dict[str, object] = {"password": None, "timeout_s": 30.0, **kwargs}
    return parse_in_subprocess(f"{PARSERS}:{func}", data_path, **options)  # type: ignore[arg-type]


def test_hanging_parser_is_killed_after_the_timeout(pid_file: tuple[str, Path]) -> None:
    data_path, pid_path = pid_file
    started = time.monotonic()
    with pytest.raises(ParseTimeoutError, match="parsing took longer than 1 s"):
        _run("hang", data_path, timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert not _alive(int(pid_path.read_text()))


def test_exit_code_becomes_corrupt(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(CorruptError, match="exited with code 3"):
        _run("exit_3", pid_file[0])
    assert not _alive(int(pid_file[1].read_text()))


def test_killed_child_becomes_corrupt(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(CorruptError, match="killed by SIGKILL"):
        _run("sigkill", pid_file[0])


def test_parse_error_crosses_the_process_boundary(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(EncryptedError, match="supply the password") as caught:
        _run("encrypted", pid_file[0], password="pw")
    assert caught.value.message.endswith("(got 'pw')")


def test_unknown_exception_becomes_corrupt(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(CorruptError, match="parsing failed: KeyError"):
        _run("buggy", pid_file[0])


def test_memory_limit(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(CorruptError, match="ran out of memory"):
        _run("greedy", pid_file[0], memory_limit_mb=512)


def test_large_result_does_not_deadlock(pid_file: tuple[str, Path]) -> None:
    doc = _run("big", pid_file[0], timeout_s=20.0)
    assert len(doc.text) == 30_000_000  # type: ignore[attr-defined]


def test_real_pdf_parse_matches_in_process() -> None:
    path = FIXTURES / "pagelabels.pdf"
    doc = parse_in_subprocess("ingest.parsers.pdf:parse", str(path), password=None, timeout_s=30)
    assert doc == parse(path.read_bytes())
    assert doc.page_count == 5


def test_real_encrypted_pdf_and_password() -> None:
    path = str(FIXTURES / "r4-aes-user-password.pdf")
    with pytest.raises(EncryptedError):
        parse_in_subprocess("ingest.parsers.pdf:parse", path, password=None, timeout_s=30)
    doc = parse_in_subprocess("ingest.parsers.pdf:parse", path, password="asdfzxcv", timeout_s=30)
    assert doc.text.startswith("pdf encryption test")


def test_bad_parser_path_is_a_programming_error(pid_file: tuple[str, Path]) -> None:
    with pytest.raises(ValueError, match="package.module:function"):
        parse_in_subprocess("no_colon", pid_file[0], password=None, timeout_s=5)


def test_many_calls_leak_no_processes_or_descriptors(pid_file: tuple[str, Path]) -> None:
    data_path, pid_path = pid_file
    _run("echo_pid", data_path)  # warm up the forkserver
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    pids = []
    for _ in range(25):
        doc = _run("echo_pid", data_path, password="x")
        pids.append(int(pid_path.read_text()))
        assert doc.text == f"pid {pids[-1]} password x"  # type: ignore[attr-defined]
    with pytest.raises(ParseTimeoutError):
        _run("hang", data_path, timeout_s=0.5)
    pids.append(int(pid_path.read_text()))
    assert len(set(pids)) == len(pids)  # one fresh child per call
    assert not [pid for pid in pids if _alive(pid)]
    gc.collect()
    # No growth. Fewer is fine: an earlier test's leftovers may close theirs meanwhile
    # (CI once saw 22 after 23 before).
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def test_progress_reaches_the_parent_while_the_child_runs(pid_file: tuple[str, Path]) -> None:
    seen: list[tuple[int, int]] = []
    with pytest.raises(ParseTimeoutError):  # reports arrive before the timeout, not after
        _run("slow_pages", pid_file[0], timeout_s=2.0, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (1, 4) and seen[-1] == (4, 4)  # the first and last are always sent


def test_pdf_pages_are_reported_as_they_are_parsed(tmp_path: Path) -> None:
    from tests.helpers import make_pdf

    path = tmp_path / "doc.pdf"
    path.write_bytes(make_pdf([[f"Page {n} text"] for n in range(1, 31)]))
    seen: list[tuple[int, int]] = []
    doc = parse_in_subprocess(
        "ingest.parsers.pdf:parse", str(path), password=None, timeout_s=30.0,
        on_progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert doc.page_count == 30 and seen[-1] == (30, 30)
    assert all(t == 30 for _, t in seen)
