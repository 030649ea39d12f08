# MatCarv AIOps — the two commands:
#   make run    venv + AWS emulator with the simulated account + airflow standalone (Ctrl-C stops all)
#   make test   venv + lint (ruff, mypy) + tests
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-distributed lint unit bench venv lock clean mypy

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml sandbox/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]} ($(PYTHON)); set PYTHON=/path/to/python3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . -e sandbox
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	@exec $(BIN)/aiops dev run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint infra/bootstrap.yaml

mypy: $(STAMP)
	$(BIN)/mypy

test: lint
	$(BIN)/python -m aiops.cli config validate
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# Scale-out (docs/scale-out.md): Postgres + Redis (OS packages), api-server, scheduler, dag-processor,
# triggerer and two Celery workers; a metrics_extract backfill and the cpu-pinned game day end to end.
test-distributed: $(STAMP)
	$(BIN)/python tests/distributed/run.py

bench: $(STAMP)
	$(BIN)/python benchmarks/metrics_extract_bench.py

lock: $(STAMP)  ## regenerate requirements.txt (runtime) and requirements-dev.txt (dev) with uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--quiet -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in -c requirements.txt --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --quiet \
		--no-emit-package matcarv-aiops --no-emit-package matcarv-aiops-sandbox -o requirements-dev.txt

clean:
	rm -rf $(VENV) .airflow .aiops .pytest_cache .ruff_cache
