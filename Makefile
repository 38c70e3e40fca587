# rallycall: `make run` (demo on the embedded stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run stack prod-like wheel test lint bench chaos catalogues clean

# The embedded stack, prod-like, the bench and the drill run on the published dev secrets:
# declared development (unset, RALLYCALL_ENVIRONMENT means production, which refuses them).
DEV := RALLYCALL_ENVIRONMENT=development

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)  ## the demo conference on the embedded stack, followed live (Ctrl-C to stop)
	$(DEV) $(BIN)/python -m stack --demo

stack: $(STAMP)  ## the embedded stack alone, in the foreground
	$(DEV) $(BIN)/python -m stack

prod-like: $(STAMP)  ## the production topology, each piece its own process (deploy/README.md)
	$(DEV) $(BIN)/python -m stack.prod_like

wheel: $(STAMP)  ## the installable package (pip install dist/rallycall-*.whl gives the rallycall command)
	rm -rf build  # setuptools would ship stale copies of removed modules from there
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .
	rm -rf build

test: $(STAMP)  ## the whole test suite (installs Debian's chromium for the console's browser tests when it can)
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } || true
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(DEV) $(BIN)/python -m bench.conference_scale

chaos: $(STAMP)  ## the chaos drills: four conferences on the prod-like topology broken on purpose (~12 min), then the first carrier lost mid-conference (~7 min); ~19 min in all (README)
	$(DEV) $(BIN)/python -m stack.chaos; first=$$?; $(DEV) $(BIN)/python -m bench.carrier_loss && exit $$first

catalogues: $(STAMP)  ## refresh i18n/*.pot and the .po catalogues from the texts marked in the code
	$(BIN)/python -m i18n.extract

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache build dist
