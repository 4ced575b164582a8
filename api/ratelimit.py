"""Per-key rate limits (the `limits` library): one budget for chat, one for everything else.

Moving window: a key may make `chat` requests to /v1/chat and /v1/chat/completions, and
`default` requests to every other keyed route, in any window of the period. The counters
live in memory (one process) or in Redis (several API processes share them). With
authentication off (loopback, single user) the client address stands in for the key.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.deps import ContainerDep, ScopeDep
from api.settings import RateLimitSettings

CHAT_PATHS = frozenset({"/v1/chat", "/v1/chat/completions"})


class RateLimitedError(Exception):
    """A key spent its budget; it may try again after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int, budget: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.budget = budget  # "chat" or "default"


class RateLimiter:
    """The two budgets over one storage; `hit` spends one request or raises."""

    def __init__(self, settings: RateLimitSettings) -> None:
        options = {"key_prefix": settings.key_prefix} if settings.storage != "memory://" else {}
        self.storage = storage_from_string(settings.storage, **options)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.chat: RateLimitItem = parse(settings.chat)
        self.default: RateLimitItem = parse(settings.default)

    def hit(self, who: str, chat: bool) -> None:
        """Count one request by `who`; RateLimitedError when its budget is spent."""
        item, budget = (self.chat, "chat") if chat else (self.default, "default")
        if self.strategy.hit(item, budget, who):
            return
        reset = self.strategy.get_window_stats(item, budget, who).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise RateLimitedError(
            f"rate limit of {item} for {budget} requests reached; retry in {retry_after} s",
            retry_after,
            budget,
        )


def rate_limit(request: Request, scope: ScopeDep, container: ContainerDep) -> None:
    """A router dependency (api/app.py): spend one request of the caller's budget; a
    refusal is counted in /metrics by budget.

    Sync on purpose: a Redis round trip runs in FastAPI's thread pool, not on the loop."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    if scope.key_id is not None:
        who = f"key:{scope.key_id}"
    else:
        who = f"ip:{request.client.host if request.client else 'unknown'}"
    try:
        limiter.hit(who, chat=request.url.path in CHAT_PATHS)
    except RateLimitedError as exc:
        container.metrics.rate_limited.labels(exc.budget).inc()
        raise
