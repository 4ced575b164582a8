"""GET /metrics: Prometheus text, for a bearer token or (no token set) loopback clients."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api import errors
from api.deps import ContainerDep

router = APIRouter(tags=["health"])
_TEXT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get("/metrics", response_class=Response, responses={**_TEXT, **errors.responses(403)})
def metrics(request: Request, container: ContainerDep) -> Response:
    """Prometheus metrics; needs `Authorization: Bearer $GROUNDED_METRICS__TOKEN`, or when
    no token is set, a loopback client."""
    token = container.settings.metrics.token
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return errors.error_response(403, "forbidden", "a valid metrics token is required")
    elif not _loopback(request.client.host if request.client else ""):
        message = "metrics are served to loopback clients only (or set GROUNDED_METRICS__TOKEN)"
        return errors.error_response(403, "forbidden", message)
    body = generate_latest(container.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
