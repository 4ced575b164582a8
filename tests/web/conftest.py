"""One real app for the browser tests: uvicorn on a free port with the real bundled
embedder and LLM, a worker thread indexing uploads, authentication on (an admin and a
reader key), and one Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.container import Container, build_container
from api.worker import Worker
from data.keys import create_key
from data.models import Collection
from data.scope import Role
from retrieval.embedder import Embedder
from tests.conftest import LiveServer, make_settings

CHROMIUM = Path(os.environ.get("GROUNDED_CHROMIUM", "/usr/bin/chromium"))
# GROUNDED_SCREENSHOTS=1: the tests also (re)write the README's screenshots.
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
TAKE_SCREENSHOTS = os.environ.get("GROUNDED_SCREENSHOTS") == "1"


@dataclass
class Site:
    """The running app and what the tests sign in with."""

    url: str
    admin_key: str
    reader_key: str
    browser: Any  # playwright Browser
    container: Container
    files: Path  # where the tests write files to upload


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    embedder: Embedder,
    chat_model: Any,
) -> Iterator[Site]:
    """The app, its worker and a browser, once for the module."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium and "
            "fonts-wqy-microhei with apt-get when run as root (or set GROUNDED_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    root = tmp_path_factory.mktemp("web")
    shutil.copy(sqlite_template, root / "grounded.db")
    settings = make_settings(
        root / "home",
        f"sqlite:///{root / 'grounded.db'}",
        auth={"enabled": True},
        llm={"max_answer_tokens": 48},  # short answers: the module stays well under 3 minutes
    )
    container = build_container(settings, embedder=embedder, chat_model=chat_model)
    with container.sessions() as s:
        s.add(Collection(name="secret", description="not granted to the reader"))
        s.commit()
        admin = create_key(s, name="admin", role=Role.ADMIN).key
        reader = create_key(s, name="reader", role=Role.READER, collections=["default"]).key
    worker = Worker(container, holder="web-tests")
    working = threading.Thread(target=worker.run_forever, daemon=True)
    working.start()
    server = LiveServer(container)
    playwright = sync_playwright().start()
    # --no-sandbox: the tests run as root in CI containers, where Chromium's sandbox can't start.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    files = root / "files"
    files.mkdir()
    try:
        yield Site(server.url, admin, reader, browser, container, files)
    finally:
        browser.close()
        playwright.stop()
        server.stop()
        worker.stop()
        working.join(timeout=30)
        container.close()


class Tab:
    """A browser tab with its console errors collected (a test fails on any)."""

    def __init__(self, site: Site, **context: Any) -> None:
        self.site = site
        self.context = site.browser.new_context(
            **{"viewport": {"width": 1280, "height": 860}, **context}
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, key: str) -> Any:
        """Open the page and sign in; returns the page once the chat is shown."""
        page = self.page
        page.goto(self.site.url + "/")
        page.get_by_test_id("api-key").fill(key)
        page.get_by_test_id("sign-in").click()
        page.locator("#view-chat").wait_for(state="visible")
        return page

    def screenshot(self, name: str, **options: Any) -> None:
        """Save a README screenshot (only with GROUNDED_SCREENSHOTS=1)."""
        if TAKE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


@pytest.fixture
def tab(site: Site) -> Iterator[Tab]:
    """A fresh browser context (its own sessionStorage) for one test."""
    t = Tab(site)
    yield t
    errors = list(t.errors)
    t.context.close()
    assert errors == [], f"console errors: {errors}"


@pytest.fixture
def new_tab(site: Site) -> Iterator[Any]:
    """Tabs with other options (locale, viewport), checked for console errors too."""
    made: list[Tab] = []

    def make(**context: Any) -> Tab:
        made.append(Tab(site, **context))
        return made[-1]

    yield make
    errors = [e for t in made for e in t.errors]
    for t in made:
        t.context.close()
    assert errors == [], f"console errors: {errors}"
