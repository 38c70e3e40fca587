# rallycall: `make run` (demo on the embedded stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run stack test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)  ## the demo conference on the embedded stack, followed live (Ctrl-C to stop)
	$(BIN)/python -m stack --demo

stack: $(STAMP)  ## the embedded stack alone, in the foreground
	$(BIN)/python -m stack

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench.conference_scale

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
