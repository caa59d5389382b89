# The README's two commands:
#   make run    set up everything (system packages, venv, runtime dependencies) and start the sandbox QTSP
#   make test   set up everything the tests use (system packages included) and run the whole suite
# Python dependencies are pinned in requirements/*.lock (`make lock` regenerates them with uv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= qtsp-data
PORT ?= 8080
HOST ?= 127.0.0.1
PYTEST_ARGS ?=

.PHONY: run test check venv test-venv system-run system-test system-bench bench lock wheel clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: what `qtsp sandbox` and `qtsp serve` need.
$(VENV)/.installed-run: pyproject.toml requirements/run.lock | $(BIN)/activate
	$(BIN)/pip install -q -c requirements/run.lock -e .
	touch $@

# Test extras on top (real OpenBao, pyhanko, schemathesis, the PostgreSQL driver, ruff, mypy, Selenium...).
$(VENV)/.installed-test: pyproject.toml requirements/test.lock | $(BIN)/activate
	$(BIN)/pip install -q -c requirements/test.lock -e '.[test]'
	touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-run
test-venv: $(VENV)/.installed-test

system-run:
	@scripts/system-deps.sh run
system-test:
	@scripts/system-deps.sh test
system-bench:
	@scripts/system-deps.sh bench

run: system-run venv
	$(BIN)/qtsp sandbox --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)
	$(BIN)/qtsp serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: system-test test-venv check
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Static checks, part of `make test`: ruff (pyflakes, pycodestyle errors, bugbear, pyupgrade) and mypy
# (strict on qtsp/core and qtsp/relying_party); settings in pyproject.toml.
check: test-venv
	$(BIN)/ruff check qtsp cli ceremonies ca_store tests benchmarks stress
	$(BIN)/mypy

bench: system-bench test-venv
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/issuance.py
	$(BIN)/python benchmarks/ocsp_load.py
	$(BIN)/python benchmarks/ocsp_unused_serials.py
	$(BIN)/python benchmarks/slow_body.py --server both
	$(BIN)/python benchmarks/signing.py
	$(BIN)/python benchmarks/validate_batch.py
	$(BIN)/python benchmarks/bank_verifier.py

lock: | $(BIN)/activate
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -q --no-header -o requirements/run.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --extra test --extra postgres -q --no-header -o requirements/test.lock

wheel: | $(BIN)/activate
	$(BIN)/pip wheel -q --no-deps -w dist .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache dist build
