# One command per task, the same for people and CI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK  ?= dev

.PHONY: setup test lint typecheck unit plan plan-json serve demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs the project (editable, so `components` imports when Pulumi runs infra/)
# with the serving extra and the test tools, all pinned in pyproject.toml.
setup: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	$(BIN)/pyright --version >/dev/null

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint serving/Dockerfile

typecheck:
	$(BIN)/pyright

unit:
	$(BIN)/pytest -q

# Everything CI checks: lint, types, and the whole test suite.
test: lint typecheck unit

plan:
	$(BIN)/python -m infra.plan --stack $(STACK)

plan-json:
	$(BIN)/python -m infra.plan --stack $(STACK) --json

demo:
	$(BIN)/python -m serving.demo

bench:
	$(BIN)/python -m bench.serving

clean:
	rm -rf $(VENV) .mlflow .pytest_cache .ruff_cache
