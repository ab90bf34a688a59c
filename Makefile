# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARTIFACTS ?= artifacts/default
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test test-fast install install-dev artifacts lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev,dask]"
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)
install-dev: $(STAMP_DEV)

artifacts: $(STAMP_RUN)
	$(VENV)/bin/popdrivers build --out $(ARTIFACTS)

# Builds the default artifacts from the simulated catalogue if missing, then starts the main job.
run: $(STAMP_RUN)
	$(VENV)/bin/popdrivers run --artifacts $(ARTIFACTS)

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check src tests benchmarks

# pytest exits 5 when it collects nothing; that is a failure here too (no test ran).
# Every test runs, the slow (real-data fits, Dask, AppTest) and browser ones included.
test: $(STAMP_DEV)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# The quick loop while editing: everything but the tests marked slow or browser.
test-fast: $(STAMP_DEV)
	$(VENV)/bin/pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache
