# Entry points for people and CI. Every target sets up what it needs, so each works on a
# fresh clone: a virtual environment from the pinned lock file, and pinned Go-built tools.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
LOCK := requirements/dev.lock

# Nothing run from here reports usage to outside hosts.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
# XGBoost's idle OpenMP threads spin by default; on two shared cores that slows every
# other process (and training itself) by an order of magnitude. Let them sleep.
export OMP_WAIT_POLICY ?= passive
TOOLS := .tools

include hack/versions.mk

.PHONY: run test lint venv tools clean bench-workflow bench-serving bench-tuning

## run: the whole training workflow, locally, on the default synthetic data
run: venv
	$(BIN)/xgbflow run $(ARGS)

## test: every check CI runs
test: venv tools
	$(BIN)/pytest $(PYTEST_ARGS)

## bench-workflow: time, memory and accuracy of the local run at 100k and 1M rows
bench-workflow: venv
	$(BIN)/python -m benchmarks.workflow

## bench-serving: the model server against MLServer and the floors (needs Debian's wrk)
bench-serving: venv
	$(BIN)/python -m benchmarks.serving

## bench-tuning: Bayesian optimisation against random search over the Experiment's space
bench-tuning: venv tools
	$(BIN)/python -m benchmarks.tuning.run

## lint: formatter and linter, as pre-commit runs them
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

venv: $(VENV)/.installed

## tools: kustomize, kubeconform and the JSON schemas, at the versions in hack/versions.mk
tools: $(TOOLS)/stamps/kustomize-$(KUSTOMIZE_VERSION) \
	$(TOOLS)/stamps/kubeconform-$(KUBECONFORM_VERSION) $(TOOLS)/schemas/VERSIONS

$(TOOLS)/stamps/kustomize-$(KUSTOMIZE_VERSION):
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install $(KUSTOMIZE_MODULE)@$(KUSTOMIZE_VERSION)
	mkdir -p $(@D) && touch $@

$(TOOLS)/stamps/kubeconform-$(KUBECONFORM_VERSION):
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install $(KUBECONFORM_MODULE)@$(KUBECONFORM_VERSION)
	mkdir -p $(@D) && touch $@

$(TOOLS)/schemas/VERSIONS: hack/versions.mk hack/generate_schemas.py | venv
	$(BIN)/python hack/generate_schemas.py $(TOOLS)/schemas

$(VENV)/.installed: $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

## lock: re-resolve the pinned dependency set after editing pyproject.toml
lock: venv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) .tools build
