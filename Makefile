# omnistream — every target creates the virtualenv and installs the pinned stack if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install dev test test-unit lint format bench soak lock clean browser-deps vendor-console

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install omnistream with the pinned dev stack

dev: $(STAMP) ## Run broker + Redis + worker + sample journeys + demo traffic (Ctrl-C stops all)
	$(BIN)/omnistream dev

test: $(STAMP) browser-deps ## Run the whole test suite (starts its own broker and Redis)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The console's browser tests (tests/browser) drive Debian's chromium through Playwright; the
# Playwright package is in the dev extra, the browser comes from apt (Playwright's own browser
# download is not used). Installs chromium when it is missing and we are root; otherwise says how.
CHROMIUM ?= /usr/bin/chromium
browser-deps: ## Install Debian's chromium for the browser tests if missing (needs root)
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for tests/browser (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation; \
	else \
	  echo "WARNING: $(CHROMIUM) is missing and we are not root: the browser tests will fail." >&2; \
	  echo "  install it with: sudo apt-get install chromium   (or: sudo make browser-deps)" >&2; \
	fi

test-unit: $(STAMP) ## Only the tests that need no broker or Redis
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff + mypy (strict) + import-linter layering contracts
	$(BIN)/ruff check omnistream tests benchmarks
	$(BIN)/ruff format --check omnistream tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix omnistream tests benchmarks
	$(BIN)/ruff format omnistream tests benchmarks

bench: $(STAMP) ## Benchmarks: prints a table and writes bench-results.json (not run in CI)
	$(BIN)/python -m benchmarks

SOAK_ARGS ?=
soak: $(STAMP) ## kill -9 soak: 2 workers, keyed traffic, seeded kills; ~3-5 min a run (not in CI)
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

lock: $(BIN)/python ## Re-resolve the pinned versions into constraints.txt (deliberately)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^omnistream' > constraints.txt
	@touch $(STAMP)

# The console's graph layout library, vendored (no CDN): elkjs from npm (EPL-2.0, licence copied
# next to it). The files are committed; this re-fetches them, e.g. to move to a new version.
ELKJS_VERSION ?= 0.12.1
CONSOLE_STATIC := omnistream/console/static
vendor-console: ## Re-fetch the console's vendored elkjs from npm into the package (committed)
	@tmp=$$(mktemp -d) && \
	  (cd $$tmp && npm pack --silent elkjs@$(ELKJS_VERSION) >/dev/null && tar xzf elkjs-$(ELKJS_VERSION).tgz) && \
	  cp $$tmp/package/lib/elk.bundled.js $(CONSOLE_STATIC)/elk.bundled.js && \
	  cp $$tmp/package/LICENSE.md $(CONSOLE_STATIC)/elk.LICENSE.md && \
	  rm -rf $$tmp && echo "elkjs $(ELKJS_VERSION) -> $(CONSOLE_STATIC)/elk.bundled.js"

clean: ## Remove the virtualenv, caches and local state
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
