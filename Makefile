# `make run` sets up and starts the sandbox QTSP; `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= qtsp-data

.PHONY: run test venv bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

PORT ?= 8080

run: venv
	$(BIN)/qtsp sandbox --data-dir $(DATA_DIR) --port $(PORT)
	$(BIN)/qtsp serve --data-dir $(DATA_DIR) --port $(PORT)

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/issuance.py
	$(BIN)/python benchmarks/ocsp_load.py
	$(BIN)/python benchmarks/signing.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
