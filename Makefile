# kpr-exporter developer entry points. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Python caches compiled modules (and pytest its rewritten test modules) in __pycache__
# unless PYTHONDONTWRITEBYTECODE is set; some shells and images set it. Every test worker
# and every `python -m exporter` a test starts would then compile the project again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast bench protos lint system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## demo: simulator + exporter on loopback with a live summary
demo: $(STAMP)
	$(VENV)/bin/kpr-exporter demo $(ARGS)

## system-deps: Debian's prometheus (promtool) and prometheus-alertmanager, when missing
system-deps:
	@scripts/system-deps.sh

## test: the lint contracts, then everything, real components included (installs what is missing)
test: lint system-deps
	KPR_REQUIRE_REAL_COMPONENTS=1 $(PY) -m pytest $(PYTEST_ARGS)

## test-fast: the suite without the real-stack tests, on pytest-xdist workers (the tests
## listen on ephemeral loopback ports, write into their own tmp_path and emulate datapaths
## on their worker's own networks). One worker more than cores: some tests wait on sockets
## and injected clocks, and the third worker fills those waits. WORKERS=n to change it.
WORKERS ?= 3
test-fast: $(STAMP)
	$(PY) -m pytest -m 'not realstack' -n $(WORKERS) --dist worksteal $(PYTEST_ARGS)

## lint: the layering contracts (import-linter) and the types (mypy, configured in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

## protos: regenerate exporter/_gen from exporter/protos
protos: $(STAMP)
	$(PY) -m exporter.protos.generate

## bench: benchmarks against the targets of the brief
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
