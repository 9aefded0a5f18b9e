# Everything a fresh machine needs: `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): pyproject.toml $(wildcard operators/_*.c schemas/_*.c schemas/_*.h connectors/_*.c)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	bash deploy/clickhouse/provision-test-server.sh
	bash deploy/prometheus/provision-promtool.sh
	$(BIN)/python -m pytest -q --durations=15

demo: $(STAMP)
	$(BIN)/marketprism collect --sim --duration 60

bench: $(STAMP)
	$(BIN)/python bench/replay.py

clean:
	rm -rf $(VENV) data .pytest_cache
