# The habits of this repository. `make test` and `make demo` work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check
STAMP  := $(VENV)/.installed

.PHONY: setup test test-unit lint typecheck fmt clean demo openapi

setup: $(STAMP)

# Re-install only when the package's dependencies change.
$(STAMP): layers/core/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e 'layers/core[agent,aws,cli,dev]'
	touch $(STAMP)

# The bundled example end to end on the embedded defaults: no cloud account, no keys, no LLM.
demo: setup
	SOLVER_HOME=$${SOLVER_HOME:-$(CURDIR)/.solver} $(BIN)/solver demo

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest -q -m unit $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy layers/core/src functions tests

# The API's OpenAPI document, generated from the routers (a contract test checks it is current).
openapi: setup
	$(BIN)/python -m solver_core.api > docs/openapi.json

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
