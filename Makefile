# One task runner for people and CI.  `make run` sets up everything and runs the main job; `make test` passes the tests.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install packages run test unit integration lint stack-up stack-down status bench bench-replay bench-crm bench-runtime bench-capture bench-debezium bench-sink chaos clean-state

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

packages: install     ## bring the Debian packages the project installs to the newest version served (CI runs it)
	$(BIN)/python -m infra.stack upgrade-packages

run: install          ## set up the stack, the Kingdee demo database, capture and the materials flow; live view
	$(BIN)/cdchub run

test: install         ## all tests: unit, then integration on the real local stack (started once, stopped after)
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

lint: install         ## ruff, the package layers (import-linter, docs/layers.md) and mypy --strict; CI runs it
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy core connectors flows cdchub infra

stack-up: install
	$(BIN)/cdchub up

stack-down: install
	$(BIN)/cdchub down

status: install
	$(BIN)/cdchub status

bench: install        ## capture throughput, end-to-end latency percentiles, RSS; polling baseline in the same run
	$(BIN)/python -m tests.bench.bench_materials

bench-replay: install ## replay/reconcile: records compared/s, CRM calls and RSS vs a full re-sync in the same run
	$(BIN)/python -m tests.bench.bench_replay --materials 20000 --drift 0.01

bench-crm: install     ## CRM edit → Kingdee and campaign → OA latency, and idle API credits: polling vs notifications
	$(BIN)/python -m tests.bench.crm_latency

bench-runtime: install ## the runtime: idle CPU/RSS before vs after, tokens over restarts, scale-out to 2 workers/processes
	$(BIN)/python -m tests.bench.bench_runtime

bench-capture: install ## the capture modes side by side (log, query, webapi): latency, deletions, source load, agreement
	$(BIN)/python -m tests.bench.capture_modes

bench-debezium: install ## cdchub's capture vs Debezium tuned (Connect 4.1.1, from Maven Central): rows/s, latency, CPU, RSS
	$(BIN)/python -m tests.bench.bench_debezium

bench-sink: install   ## the sink at the CRM's pace: simulator ceiling, flow drain ratio and credits, e2e p50/p95/p99 at 1,000/s
	$(BIN)/python -m tests.bench.bench_sink

clean-state:          ## forget capture position, flow recovery and ledger (the stack keeps running)
	rm -rf .cache/state

chaos: install        ## fault campaign (~15 min, restarts the shared Kafka, registry and PostgreSQL): lost/duplicated/mismatched
	$(BIN)/python -m tests.bench.chaos
