# Every target creates or refreshes .venv first, so both commands work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest pytest-compiled compiled soak bench diff clean

# The development install is the pure-Python reference (FLAGSTREAM_BUILD=pure: nothing compiled).
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	FLAGSTREAM_BUILD=pure $(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The compiled build (mypyc, setup.py), installed beside the reference in its own directory and
# put first on PYTHONPATH by pytest-compiled. Rebuilt when any source changes (about 2 minutes).
COMPILED       := .build/compiled
COMPILED_STAMP := $(COMPILED)/.built
$(COMPILED_STAMP): $(STAMP) Makefile setup.py pyproject.toml $(shell find src -name '*.py')
	rm -rf $(COMPILED) build  # setuptools would package a stale extension left in build/
	FLAGSTREAM_BUILD=compiled $(BIN)/python -m pip install -q --no-deps --no-build-isolation --target $(COMPILED) .
	touch $@

compiled: $(COMPILED_STAMP)

# What the compiled modules run in: decisions (the differential suite against optimizely-sdk), the
# config they read, events and payload bytes, the client API, the delivery plan, the processors'
# queue and intake (both drivers, fork and exit) and the spool's writer. The transports, servers and tools run no compiled code of their own: the pure run covers them.
COMPILED_TESTS := tests/test_build.py tests/test_exported_members.py tests/differential \
	tests/decision tests/events tests/client tests/openfeature_provider \
	tests/config/test_project_config_model.py tests/config/test_config_differences.py \
	tests/config/test_optimizely_config.py tests/delivery/test_batch_processor.py \
	tests/delivery/test_batch_core.py tests/delivery/test_async_processor.py \
	tests/delivery/test_delivery_lifecycle.py tests/delivery/test_forwarding_and_flushing.py \
	tests/delivery/test_delivery_scenarios.py tests/delivery/test_delivery_plan.py \
	tests/delivery/test_optimizely_interop.py tests/spool/test_spool_processor.py \
	tests/spool/test_format_records.py tests/spool/test_mirror.py

demo: $(STAMP)
	$(BIN)/flagstream demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

pytest-compiled: $(COMPILED_STAMP)
	FLAGSTREAM_EXPECT_BUILD=compiled PYTHONPATH=$(COMPILED) $(BIN)/pytest $(COMPILED_TESTS)

test: lint typecheck pytest pytest-compiled


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
	rm -rf $(VENV) .build build .pytest_cache .mypy_cache .ruff_cache
