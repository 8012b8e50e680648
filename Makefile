# The habits of this repository. `make test` and `make demo` work from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check
STAMP  := $(VENV)/.installed

.PHONY: setup test test-unit lint typecheck fmt clean demo openapi tools build sizes solver-wheel bench deploy-check

setup: $(STAMP)

# Re-install only when the package's dependencies change.
$(STAMP): layers/core/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e 'layers/core[agent,aws,tracing,publish,migrations,cli,dev]'
	touch $(STAMP)

# The bundled example end to end on the embedded defaults: no cloud account, no keys, no LLM.
demo: setup
	SOLVER_HOME=$${SOLVER_HOME:-$(CURDIR)/.solver} $(BIN)/solver demo

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest -q -m unit $(PYTEST_ARGS)

lint: setup tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/core/src functions tests benchmarks
	$(BIN)/lint-imports  # layer order and no import cycles (.importlinter)
	$(TOOLS)/sam validate --lint --template template.yaml --region us-east-1
	$(TOOLS)/cfn-lint template.yaml
	$(TOOLS)/checkov --quiet --compact --skip-download --config-file .checkov.yaml --file template.yaml

# Everything about the deployment that can be proven without an AWS account (docs/deploy.md): template.yaml
# translated by the SAM translator, the IAM contract (every function's AWS calls against its own role), the
# secrets each function is handed, the state machine's shape and payload sizes, the lint of code and template,
# and the package sizes when a build exists (`make build` first: it downloads the Lambda runtime's wheels).
DEPLOY_TESTS = tests/contract/test_iam.py tests/contract/test_template.py tests/contract/test_state_machine_structure.py \
               tests/contract/test_state_payloads.py tests/contract/test_long_commands.py tests/integration/test_secrets.py

# CI=1: the IAM contract and the long-command scenarios need PostgreSQL (initdb/pg_ctl on PATH); a
# machine without it fails the check instead of skipping them.
# `build` ends with the package-size check (every function within Lambda's limit).
deploy-check: setup lint build
	CI=1 $(BIN)/pytest -q -p no:cacheprovider $(DEPLOY_TESTS)

# ---- deployment build: `sam build` without Docker ------------------------------------------------
# SAM's makefile builder runs the build-<LogicalId> targets below with ARTIFACTS_DIR set. Wheels are
# the Lambda runtime's (Python 3.13, arm64), so nothing compiles and no Docker is needed.
TOOLS          := .venv-tools/bin
TOOLS_STAMP    := .venv-tools/.installed
LAMBDA_PYTHON  ?= 3.13
LAMBDA_PLATFORM ?= manylinux2014_aarch64
BUILD_PY       ?= python3
WHEELS         := .aws-sam/wheels
PIP_LAMBDA      = $(BUILD_PY) -m pip install --quiet --disable-pip-version-check --no-compile --upgrade \
                  --platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) --only-binary=:all:
# mini-swe-agent is installed without its dependencies (they pull datasets, pandas, pyarrow and a TUI
# that the agent core never imports); these are the ones it does import.
AGENT_DEPS      = 'e2b>=2.5,<3' 'litellm>=1.70' 'jinja2>=3' 'tenacity>=8' 'python-dotenv>=1' 'rich>=13' 'requests>=2'
MINI_SWE_AGENT  = 'mini-swe-agent>=2.4,<2.5'

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP):
	test -x $(TOOLS)/python || $(PYTHON) -m venv .venv-tools
	$(TOOLS)/pip install $(PIP_FLAGS) aws-sam-cli cfn-lint checkov
	touch $(TOOLS_STAMP)

build: tools solver-wheel
	SAM_CLI_TELEMETRY=0 $(TOOLS)/sam build --build-in-source --parallel
	$(MAKE) sizes

sizes: setup
	$(BIN)/python tools/lambda_build.py sizes .aws-sam/build --budget-mb 240

# Built once before `sam build` (its parallel targets only read it); rebuilt when the package changes.
solver-wheel: $(WHEELS)/.built

$(WHEELS)/.built: layers/core/pyproject.toml $(shell find layers/core/src -type f -not -path '*/__pycache__/*')
	rm -rf $(WHEELS) && $(BUILD_PY) -m pip wheel --quiet --no-deps --wheel-dir $(WHEELS) layers/core
	touch $@

build-CoreLayer: solver-wheel
	$(PIP_LAMBDA) --target "$(ARTIFACTS_DIR)/python" "$$(ls $(WHEELS)/solver_core-*.whl)[aws]"
	$(BUILD_PY) tools/lambda_build.py prune "$(ARTIFACTS_DIR)/python"
	$(BUILD_PY) tools/lambda_build.py compile "$(ARTIFACTS_DIR)/python"

build-StartSolveFunction build-StatusFunction build-CancelFunction build-BatchesFunction:
	cp functions/$(FUNCTION_DIR)/app.py "$(ARTIFACTS_DIR)/app.py"

# Alembic is the migration function's alone (the layer already carries SQLAlchemy, hence --no-deps).
build-MigrateFunction:
	cp functions/migrate/app.py "$(ARTIFACTS_DIR)/app.py"
	$(PIP_LAMBDA) --target "$(ARTIFACTS_DIR)" --no-deps 'alembic>=1.13,<2' 'mako>=1.3' 'markupsafe>=2'
	$(BUILD_PY) tools/lambda_build.py compile "$(ARTIFACTS_DIR)"

build-StartSolveFunction: FUNCTION_DIR = start_solve
build-StatusFunction: FUNCTION_DIR = status
build-CancelFunction: FUNCTION_DIR = cancel
build-BatchesFunction: FUNCTION_DIR = batches

# The run_solver bundle carries solver_core itself (no layer): the agent, the LLM client and e2b.
build-RunSolverFunction build-SweeperFunction build-ReconcilerFunction: solver-wheel
	cp functions/run_solver/app.py "$(ARTIFACTS_DIR)/app.py"
	$(PIP_LAMBDA) --target "$(ARTIFACTS_DIR)" "$$(ls $(WHEELS)/solver_core-*.whl)[aws,tracing,publish]" $(AGENT_DEPS)
	$(PIP_LAMBDA) --target "$(ARTIFACTS_DIR)" --no-deps $(MINI_SWE_AGENT)
	$(BUILD_PY) tools/lambda_build.py prune "$(ARTIFACTS_DIR)"
	$(BUILD_PY) tools/lambda_build.py compile "$(ARTIFACTS_DIR)"

typecheck: setup
	$(BIN)/mypy layers/core/src functions tests benchmarks

# Speed and size figures (BENCHMARKS.md); `make build` first for the Lambda package figures.
bench: setup
	$(BIN)/python benchmarks/overhead.py --repeat 7
	$(BIN)/python benchmarks/long_run.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/batch_api.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/cost_per_attempt.py
	$(BIN)/python benchmarks/verification.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/serve_api.py
	test ! -d .aws-sam/build || $(BIN)/python benchmarks/lambda_package.py

# The API's OpenAPI document, generated from the routers (a contract test checks it is current).
openapi: setup
	$(BIN)/python -m solver_core.api > docs/openapi.json

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
