# kpr-exporter developer entry points. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

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

## test: everything, real components included (installs what is missing)
test: $(STAMP) system-deps
	KPR_REQUIRE_REAL_COMPONENTS=1 $(PY) -m pytest $(PYTEST_ARGS)

## test-fast: the suite without the real-stack tests
test-fast: $(STAMP)
	$(PY) -m pytest -m 'not realstack' $(PYTEST_ARGS)

## lint: the layering contract
lint: $(STAMP)
	$(VENV)/bin/lint-imports

## protos: regenerate exporter/_gen from exporter/protos
protos: $(STAMP)
	$(PY) -m exporter.protos.generate

## bench: benchmarks against the targets of the brief
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
