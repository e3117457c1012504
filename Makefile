# `make demo` runs the main job; `make test` runs every check. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit schemas venv clean tools

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cellauto needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,analysis,images,catalog,report,gateway,http,optimise,sila]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/car_t.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/cellauto schema export --check

# Debian tools the tests use where they exist: chromium-headless-shell (the batch report's
# browser test) and mbpoll (an independent Modbus client); install them if we can
DEBIAN_TOOLS := chromium-headless-shell mbpoll
tools:
	@missing=""; for t in $(DEBIAN_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || echo "not installed:$$missing (the tests that need them will be skipped)"

# one worker per core; a test file stays on one worker (its module fixtures serve it once)
unit: $(STAMP) tools
	$(BIN)/pytest -n auto --dist loadfile

test: lint typecheck schemas unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build
