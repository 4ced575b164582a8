"""Every request has an id: returned in X-Request-ID and carried by its log lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.request_log import log_handler

inside = logging.getLogger("tests.inside")


@pytest.fixture
def logged(container: Container) -> Iterator[tuple[TestClient, io.StringIO]]:
    """A client on an app with one extra sync route that logs, and the JSON lines logged."""
    app = create_app(container=container)

    def logs_a_line() -> dict[str, str]:
        inside.warning("inside the handler", extra={"detail": 7})
        return {"status": "ok"}

    app.add_api_route("/logs-a-line", logs_a_line)
    stream = io.StringIO()
    handler = log_handler(stream, json_lines=True)
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("grounded.access").level
    logging.getLogger("grounded.access").setLevel(logging.INFO)
    try:
        with TestClient(app) as client:
            yield client, stream
    finally:
        root.removeHandler(handler)
        logging.getLogger("grounded.access").setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_id_returned_and_on_every_line_of_the_request(
    logged: tuple[TestClient, io.StringIO],
) -> None:
    client, stream = logged
    first = client.get("/logs-a-line")
    second = client.get("/logs-a-line")
    rid = first.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid) and second.headers["X-Request-ID"] != rid
    mine = [line for line in _lines(stream) if line["request_id"] == rid]
    # The route's line (logged in a worker thread) and the access line, nothing else.
    assert [(m["logger"], m["message"]) for m in mine] == [
        ("tests.inside", "inside the handler"),
        ("grounded.access", "GET /logs-a-line 200"),
    ]
    assert mine[0]["level"] == "WARNING" and mine[0]["detail"] == 7
    assert mine[1]["status"] == 200 and mine[1]["method"] == "GET"
    assert isinstance(mine[1]["duration_ms"], float)


def test_incoming_id_kept_when_sane(logged: tuple[TestClient, io.StringIO]) -> None:
    client, stream = logged
    r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.19:2"})
    assert r.headers["X-Request-ID"] == "lb-7f3a.19:2"
    for bad in ("a" * 65, "two words", "", b"x\xe9", "a\tb"):
        r = client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"]), bad
    ids = {line["request_id"] for line in _lines(stream)}
    assert "lb-7f3a.19:2" in ids and not any(i and " " in str(i) for i in ids)


def test_error_responses_carry_the_id_too(logged: tuple[TestClient, io.StringIO]) -> None:
    client, _ = logged
    for r in (client.get("/v1/documents/999999"), client.get("/healthz", headers={"Host": "x.y"})):
        assert r.status_code in (400, 404)
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])


def test_text_format_names_the_id() -> None:
    stream = io.StringIO()
    handler = log_handler(stream, json_lines=False)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    handler.handle(record)
    assert stream.getvalue().rstrip().endswith("INFO x [None]: hello")
