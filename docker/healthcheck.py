"""The images' HEALTHCHECK: exit 0 when GET /healthz on this container's port answers 200."""

import os
import sys
import urllib.request

port = os.environ.get("GROUNDED_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as exc:  # refused, timed out, or a 503 (HTTPError)
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
