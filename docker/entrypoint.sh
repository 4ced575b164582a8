#!/bin/sh
# The images' entrypoint: migrate the database before the API or the worker starts (a
# no-op when it is already current), then run the command as PID 1's only child.
set -eu
if [ "${1:-}" = "grounded" ] && { [ "${2:-}" = "serve" ] || [ "${2:-}" = "worker" ]; }; then
    grounded migrate
fi
exec "$@"
