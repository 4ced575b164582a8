"""`/` and `/static/`: the web page's shell and assets, served from the repository.

The shell needs no key: it holds no data. Everything the page shows it asks of the keyed
JSON API (`/v1/...`) from the browser, with the key the user typed (kept in
sessionStorage), so the page has no access path of its own: same routes, Retriever,
repositories and scope as every other client.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
# Scripts, styles and images come from this server only; page images arrive as blob: URLs
# (fetched with the key), and nothing may frame the page.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
router = APIRouter(include_in_schema=False)


@cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=HERE / "templates")


@cache
def _english() -> dict[str, str]:
    """The interface text in English: the shell is rendered with it (the script switches)."""
    strings: dict[str, str] = json.loads((STATIC / "i18n" / "en.json").read_text("utf-8"))
    return strings


def _has_route(app: Any, prefix: str, suffix: str = "") -> bool:
    # From the OpenAPI paths (built once per app, then cached): included routers are not
    # flat in `app.routes` in every FastAPI version.
    paths = app.openapi().get("paths", {})
    return any(p.startswith(prefix) and p.endswith(suffix) for p in paths)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """The page shell (no data in it)."""
    settings = request.app.state.container.settings
    strings = _english()
    context = {
        "t": lambda key: strings.get(key, key),
        "strings": strings,
        "auth": settings.auth.enabled,
        # Features whose routes this build has (the page hides what is not there).
        "features": {
            "audit": _has_route(request.app, "/v1/audit"),
            "passage": _has_route(request.app, "/v1/documents/", "/passage"),
        },
        "version": request.app.version,
        # A path, not a URL: the page works under whatever scheme and host it was reached by.
        "static": f"{request.scope.get('root_path', '')}/static",
    }
    response = _templates().TemplateResponse(request, "index.html", context)
    response.headers["content-security-policy"] = CSP
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "no-referrer"
    return response


def install(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/static/`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
