"""Named failpoints for crash tests: GROUNDED_FAILPOINT=step kills the process at that step."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)
ENV = "GROUNDED_FAILPOINT"


def hit(step: str) -> None:
    """SIGKILL ourselves (no cleanup, like a power cut) if `step` is the armed failpoint."""
    if os.environ.get(ENV) == step:
        log.warning("failpoint %s: killing process %d", step, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
