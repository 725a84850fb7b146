# dcwatch: `make demo` runs the whole pipeline locally; `make test` runs every test.
# Both install what they need: Debian's Go and govmomi (for the vCenter simulator), a .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VCSIM := .build/vcsim
STAMP := $(VENV)/.installed
APT_STAMP := .build/.apt-installed
# jsii reads this as the list of Node majors whose end-of-life banner to silence.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20

.PHONY: demo scenarios test unit integration e2e infra synth lint schemas vcsim install clean

demo: install vcsim
	$(BIN)/dcwatch demo --report report.json

scenarios: install vcsim
	$(BIN)/dcwatch scenarios --report scenarios-report.json

test: install vcsim
	$(BIN)/python -m pytest -q

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install vcsim
	$(BIN)/python -m pytest -q tests/integration

e2e: install vcsim
	$(BIN)/python -m pytest -q tests/e2e

infra: install
	$(BIN)/python -m pytest -q tests/infrastructure

synth: install
	cd infra && ../$(BIN)/python app.py

schemas: install
	$(BIN)/python -m dcwatch.contracts events/schemas

lint: install
	$(BIN)/ruff check layers functions infra tests
	$(BIN)/mypy layers/core/python/dcwatch

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

vcsim: $(VCSIM)

# Debian's govmomi 0.24 carries the simulator library; a GOPATH build needs no module download.
$(APT_STAMP):
	@mkdir -p .build
	@if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq golang-go golang-github-vmware-govmomi-dev >/dev/null; \
	fi
	touch $@

$(VCSIM): tools/vcsim/main.go $(APT_STAMP)
	cd tools/vcsim && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/.build/gocache go build -o $(CURDIR)/$(VCSIM) .

clean:
	rm -rf $(VENV) .build infra/cdk.out report.json scenarios-report.json
