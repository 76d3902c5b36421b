# Canary: developer commands. `make test` is the test command; `make e2e` runs the compose stack.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
RUFF   := $(VENV)/bin/ruff
# Debian puts nginx in /usr/sbin, which is not on every user's PATH.
export PATH := /usr/sbin:$(PATH)

.PHONY: help venv deps lint format test unit integration e2e faults swarm-test bench-analysis bench-router bench-scaling clean

help:  ## every target, with what it does
	@echo "make venv            .venv from requirements.lock (the one lock every Python image uses)"
	@echo "make deps            the binaries the process-mode tests run (prometheus, alertmanager, nginx, chromium)"
	@echo "make lint            ruff check, ruff format --check (ruff.toml), mypy on the analysis (mypy.ini)"
	@echo "make format          ruff format, then ruff check --fix"
	@echo "make test            lint, then unit and process-mode integration tests (installs what they need)"
	@echo "make unit            the unit tests alone (about 2 min)"
	@echo "make integration     the integration tests alone (about 20 min)"
	@echo "make e2e             the docker compose stack, end to end (needs Docker; about 14 min)"
	@echo "make faults          the compose stack under 40 rps through eleven faults (needs Docker; JSON table; about 9 min)"
	@echo "make swarm-test      deploy/swarm/stack.yml on a two-node swarm made here (needs Docker, root; JSON; about 10 min)"
	@echo "make bench-analysis  the rollout-analysis benchmark (prints JSON; about 5 min)"
	@echo "make bench-router    router overhead against a bare nginx split (prints JSON; installs wrk)"
	@echo "make bench-scaling   1/2/4 router replicas, /stats at 1-30 replicas vs PromQL (JSON; about 8 min)"
	@echo "make clean           remove .venv, test-logs and caches"

# One lock for everything: the images install from requirements.lock too. Then every service's
# package, editable, the way each image installs its own (pip install, no sys.path edits).
PACKAGES := common router model-server controller loadgen mlflow canaryctl
$(VENV)/.installed: requirements.lock $(PACKAGES:%=%/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(PACKAGES:%=-e ./%)
	touch $@

venv: $(VENV)/.installed

# Prometheus and nginx binaries for the process-mode tests (apt when missing).
deps:
	bash scripts/install-test-deps.sh

lint: venv
	$(RUFF) check .
	$(RUFF) format --check .
	$(VENV)/bin/mypy

format: venv
	$(RUFF) format .
	$(RUFF) check --fix .

unit: venv
	$(PYTEST) tests/unit -q

# The stack's logs, and the live page's screenshot, stay in test-logs/integration.
integration: venv deps
	rm -rf test-logs/integration && mkdir -p test-logs/integration
	TEST_LOG_DIR=$(CURDIR)/test-logs/integration $(PYTEST) tests/integration -q; status=$$?; \
	  if [ -f test-logs/integration/live-page.png ]; then \
	    echo "live page screenshot: $(CURDIR)/test-logs/integration/live-page.png"; fi; \
	  exit $$status

test: lint unit integration

e2e: venv
	$(PYTEST) tests/e2e -q -s

# The reliability figures of record: test-logs/faults/faults.json (the README's table).
faults: venv
	$(PYTEST) tests/faults -q -s

# A second Docker engine in a network namespace, a swarm of two, the stack deployed through a local
# registry; torn down even on failure. Figures: test-logs/swarm/swarm.json.
# The images the stack runs are the compose file's (canary/*:local): built here, pushed by the test.
swarm-test: venv
	bash scripts/install-swarm-deps.sh
	docker compose build --quiet
	$(PYTEST) tests/swarm -q -s

bench-analysis: venv
	$(PY) benchmarks/bench_analysis.py

bench-router: venv deps
	bash scripts/install-bench-deps.sh
	PYTHONPATH=tests $(PY) benchmarks/bench_router.py

# What changes at scale (docs/scaling.md): throughput at 1, 2, 4 replicas, the /stats fan-out.
bench-scaling: venv deps
	bash scripts/install-bench-deps.sh
	PYTHONPATH=tests $(PY) benchmarks/bench_scaling.py

clean:
	rm -rf $(VENV) test-logs .pytest_cache
