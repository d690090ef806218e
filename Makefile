# Two commands on a fresh machine (python3 >= 3.11 and make): `make demo` and `make test`.
# Each bootstraps a virtual env with the locked dependencies (uv.lock) by itself.
PYTHON ?= python3
VENV := .venv
BOOT := .cache/bootstrap
UV := $(BOOT)/bin/uv
RUN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: demo test lint fmt typecheck bench clean help

help:
	@echo "make demo   run the worker against local vendor sandboxes on a fresh SQLite ledger"
	@echo "make test   run the test suite (PostgreSQL tests run when SYNC_TEST_POSTGRES_URL is set)"
	@echo "make lint   ruff and mypy"

$(UV):
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed")'
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set, every CLI start would otherwise compile its imports.
$(STAMP): $(UV) uv.lock pyproject.toml Makefile
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-groups --compile-bytecode --python $(PYTHON) --quiet
	@touch $(STAMP)

demo: $(STAMP)
	$(RUN)/sync-worker demo

test: $(STAMP)
	$(RUN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/mypy

fmt: $(STAMP)
	$(RUN)/ruff format .
	$(RUN)/ruff check --fix .

bench: $(STAMP)
	$(RUN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(BOOT) .pytest_cache .mypy_cache .ruff_cache dist
