# One command per task, the same for people and CI. Every target that needs the
# virtualenv builds it first, so each works on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev

.PHONY: tools setup test lint typecheck unit plan plan-json plan-graph demo bench lock clean

# Installs the project (editable, so `components` imports when Pulumi runs infra/) with
# the serving extra and the test tools, all pinned in pyproject.toml, compiled to
# bytecode up front: otherwise, with PYTHONDONTWRITEBYTECODE set, every process compiles
# pulumi_aws' modules again (an offline plan of prod took 8.7 s instead of 3.4 s).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/pyright --version
	touch $(STAMP)

# promtool and prometheus (Debian's prometheus package) run the alert-rule unit tests and
# the SLA report's test server; PostgreSQL (Debian's postgresql package) is the restore
# drill's MLflow backend store. Installed with apt when missing and run as root.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		[ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || { \
		echo "promtool not found: install Debian's prometheus package (apt-get install prometheus)"; \
		exit 1; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		[ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } || { \
		echo "initdb not found: install Debian's postgresql package (apt-get install postgresql)"; \
		exit 1; }

setup: $(STAMP) tools

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint serving/Dockerfile
	$(BIN)/hadolint mlflow_server/Dockerfile

typecheck: $(STAMP)
	$(BIN)/pyright

unit: $(STAMP) tools
	$(BIN)/pytest -q

# Everything CI checks: lint, types, and the whole test suite.
test: lint typecheck unit

# PREVIOUS=FILE: the stack file as deployed (e.g. the base branch's), so that a
# Kubernetes upgrade of more than one minor version is refused.
plan: $(STAMP)
	$(BIN)/python -m infra.plan --stack $(STACK) $(if $(PREVIOUS),--previous-config $(PREVIOUS))

# Not echoed, so that the output can be redirected to a file as it is (JSON, DOT).
plan-json: $(STAMP)
	@$(BIN)/python -m infra.plan --stack $(STACK) --json

plan-graph: $(STAMP)
	@$(BIN)/python -m infra.plan --stack $(STACK) --graph

demo: $(STAMP)
	$(BIN)/python -m serving.demo

bench: $(STAMP)
	$(BIN)/python -m bench.serving

# Re-resolves the service image's locked dependencies (needs the package index).
lock: $(STAMP)
	$(BIN)/uv pip compile serving/requirements.txt --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --annotation-style line \
		--custom-compile-command "make lock" -o serving/requirements.lock

clean:
	rm -rf $(VENV) .mlflow .pytest_cache .ruff_cache
