"""The web page's shell and assets: served without a key, from this server only, and off
with GROUNDED_WEB=false. What the page does is tested in a real browser (tests/web/)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container, build_container
from api.web.routes import STATIC
from retrieval.embedder import Embedder
from tests.conftest import make_settings

CONTRACT = [
    "api-key", "sign-in", "collections", "question", "ask", "evidence", "answer",
    "source-panel", "upload",
]  # fmt: skip


# t("key") in the scripts, data-i18n="key" (and its -placeholder/-aria-label kin) in templates.
USES = r"""(?:\bt\(|data-i18n[\w-]*=)["']([a-z]+\.[\w.]+)["']"""


@pytest.fixture
def secured(tmp_path: Path, sqlite_template: Path, embedder: Embedder) -> Iterator[Container]:
    db = tmp_path / "g.db"
    db.write_bytes(sqlite_template.read_bytes())
    settings = make_settings(tmp_path / "home", f"sqlite:///{db}", auth={"enabled": True})
    c = build_container(settings, embedder=embedder)
    yield c
    c.close()


def test_the_shell_needs_no_key_and_loads_nothing_from_elsewhere(secured: Container) -> None:
    with TestClient(create_app(container=secured)) as client:
        r = client.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert 'data-auth="on"' in html
        # The page offers the source view only where this build has its route.
        has_passage = (
            "/v1/documents/{document_id}/passage" in client.get("/openapi.json").json()["paths"]
        )
        assert f'data-passage="{"on" if has_passage else "off"}"' in html
        for hook in CONTRACT:
            assert f'data-testid="{hook}"' in html, hook
        # Every asset the page names is served here (no CDN) and answers 200.
        assets = re.findall(r'(?:src|href)="(/static/[^"?]+)', html)
        assert any(a.endswith("app.js") for a in assets) and any(a.endswith(".css") for a in assets)
        assert "http://" not in html and "https://" not in html
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        # The data the page shows still needs a key.
        assert client.get("/v1/collections").status_code == 401


def test_every_script_module_and_both_languages_are_served(client: TestClient) -> None:
    for js in STATIC.glob("*.js"):
        r = client.get(f"/static/{js.name}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], js.name
        for imported in re.findall(r'from "\./([\w-]+\.js)"', r.text):
            assert (STATIC / imported).exists(), f"{js.name} imports a missing {imported}"
    en = client.get("/static/i18n/en.json").json()
    zh = client.get("/static/i18n/zh-CN.json").json()
    assert set(en) == set(zh) and all(zh.values())
    # Every key the templates and scripts name has its English text.
    used = set()
    for path in [*STATIC.glob("*.js"), *(STATIC.parent / "templates").glob("*.html")]:
        used |= set(
            re.findall(r"""(?:\bt\(|data-i18n[\w-]*=)["']([a-z]+\.[\w.]+)["']""", path.read_text())
        )
    assert used and used <= set(en), used - set(en)
    embedded = re.search(
        r'<script type="application/json" id="strings">(.*?)</script>', client.get("/").text
    )
    assert embedded and json.loads(embedded.group(1)) == en


def test_the_page_can_be_turned_off(
    tmp_path: Path, sqlite_template: Path, embedder: Embedder
) -> None:
    db = tmp_path / "g.db"
    db.write_bytes(sqlite_template.read_bytes())
    settings = make_settings(tmp_path / "home", f"sqlite:///{db}", web=False)
    c = build_container(settings, embedder=embedder)
    try:
        with TestClient(create_app(container=c)) as client:
            assert client.get("/").status_code == 404
            assert client.get("/static/app.js").status_code == 404
            assert client.get("/healthz").status_code == 200
    finally:
        c.close()
