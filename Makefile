# dcwatch: `make demo` runs the whole pipeline locally; `make test` runs every test.
# Both install what they need: Debian's Go and govmomi (for the vCenter simulator), a .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VCSIM := .build/vcsim
STAMP := $(VENV)/.installed
APT_STAMP := .build/.apt-installed
BLACKBOX := .build/blackbox/usr/bin/prometheus-blackbox-exporter
# The CDK CLI, from npm, in the repo (no global install): `.build/cdk/node_modules/.bin/cdk`.
CDK_STAMP := .build/cdk/.installed
# make bench TARGETS=1000 CONCURRENCY=200 LATENCY_MS=20 TIMEOUT_S=2 ROUNDS=3
TARGETS ?= 1000
CONCURRENCY ?= 200
LATENCY_MS ?= 20
TIMEOUT_S ?= 2
ROUNDS ?= 3
VMS ?= 100
GROUPS ?= 5
BOOT_S ?= 2
POLL_S ?= 1
IMPORT_RUNS ?= 5
TEST_WORKERS ?= 2
MATRIX_SHARDS ?= 1
SIZES ?= 10 100 1000 5000
# jsii reads this as the list of Node majors whose end-of-life banner to silence.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20

.PHONY: demo scenarios test unit integration e2e infra synth cdk lint schemas vcsim blackbox bench bench-workflow bench-evaluation bench-imports install clean

demo: install vcsim
	$(BIN)/dcwatch demo --report report.json

scenarios: install vcsim
	$(BIN)/dcwatch scenarios --report scenarios-report.json

# make test TEST_WORKERS=2 MATRIX_SHARDS=1: every tier side by side in one pytest run (the order:
# tests/conftest.py); the scenario matrix in MATRIX_SHARDS runtimes side by side (tests/e2e/shards.py)
test: install vcsim blackbox cdk
	MATRIX_SHARDS=$(MATRIX_SHARDS) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: install blackbox bench-workflow bench-evaluation bench-imports
	$(BIN)/python -m bench --exporter $(BLACKBOX) --targets $(TARGETS) --concurrency $(CONCURRENCY) \
	  --latency-ms $(LATENCY_MS) --timeout $(TIMEOUT_S) --rounds $(ROUNDS)

# make bench-evaluation SIZES="10 100 1000 5000": what a probe round costs the evaluator, old design beside new
bench-evaluation: install
	$(BIN)/python -m bench.evaluation --sizes $(SIZES)

# make bench-imports IMPORT_RUNS=5: cold-start imports per handler and step, and a first failover's cold starts
bench-imports: install
	$(BIN)/python -m bench.imports --runs $(IMPORT_RUNS)

# make bench-workflow VMS=100 GROUPS=5 BOOT_S=2 POLL_S=1
bench-workflow: install vcsim
	$(BIN)/python -m bench.workflow --vms $(VMS) --groups $(GROUPS) --boot-s $(BOOT_S) --poll-s $(POLL_S)

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install vcsim blackbox
	$(BIN)/python -m pytest -q tests/integration

e2e: install vcsim
	MATRIX_SHARDS=$(MATRIX_SHARDS) $(BIN)/python -m pytest -q tests/e2e

infra: install cdk
	$(BIN)/python -m pytest -q tests/infrastructure

# Offline, with the placeholder dependency layer (it says so); a plain `python app.py` builds the real one.
# Every synth names the id of each hosted zone of its config; the demo's is made up.
DEMO_ZONE_IDS = {"hosting.example.": "Z0000000000001"}
synth: install
	cd infra && ../$(BIN)/python app.py -c deps=placeholder -c hosted_zone_ids='$(DEMO_ZONE_IDS)'

schemas: install
	$(BIN)/python -m dcwatch.contracts events/schemas

# ruff over everything; mypy over the core, the handlers, the CDK code and the benchmarks (its files and its
# strictness: pyproject.toml). `.pre-commit-config.yaml` runs the same.
lint: install
	$(BIN)/ruff check layers functions infra tests bench
	$(BIN)/ruff format --check layers functions infra tests bench
	$(BIN)/mypy

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

cdk: $(CDK_STAMP)

$(CDK_STAMP):
	@mkdir -p .build/cdk
	npm install --prefix .build/cdk --no-audit --no-fund --silent aws-cdk@2
	touch $@

vcsim: $(VCSIM)

# Debian's govmomi 0.24 carries the simulator library; a GOPATH build needs no module download. Debian's chromium
# is the headless browser the report test opens the HTML report in.
$(APT_STAMP): Makefile
	@mkdir -p .build
	@if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] \
	  || ! command -v chromium >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq golang-go golang-github-vmware-govmomi-dev \
	    chromium >/dev/null; \
	fi
	touch $@

$(VCSIM): tools/vcsim/main.go | $(APT_STAMP)
	cd tools/vcsim && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/.build/gocache go build -o $(CURDIR)/$(VCSIM) .

blackbox: $(BLACKBOX)

# Debian's package, unpacked rather than installed: installing it would start its service, which
# listens on every interface; the benchmark starts its own exporter on loopback.
$(BLACKBOX):
	@mkdir -p .build/blackbox
	@cd .build && { apt-get download -qq prometheus-blackbox-exporter 2>/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && apt-get download -qq prometheus-blackbox-exporter; }; }
	dpkg-deb -x .build/prometheus-blackbox-exporter_*.deb .build/blackbox
	rm -f .build/prometheus-blackbox-exporter_*.deb
	touch $@

clean:
	rm -rf $(VENV) .build infra/cdk.out report.json report.html scenarios-report.json
