# Every target creates or refreshes .venv first, so both commands work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest soak bench diff clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flagstream demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest


bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# A wider differential run against optimizely-sdk than the test suite's (SEEDS=first:last).
SEEDS ?= 0:300
diff: $(STAMP)
	$(BIN)/python tests/differential/explore.py --seeds $(SEEDS)

# Long scenarios kept out of `make test`: randomized spool crash and outage runs, Redis SIGSTOPped for 30 s.
soak: $(STAMP)
	FLAGSTREAM_SOAK=1 $(BIN)/pytest -m soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
