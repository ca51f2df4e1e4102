# Two commands do all the set-up; each creates the virtualenv (.venv) on first use.
#   make demo       install, then tag and embed 240 real videos against the built-in
#                   emulator (free), and search the vectors in Qdrant
#   make test       install, then run the fast lane: every rule once, on every core
#   make test-all   lint (ruff, mypy), then the fast lane plus the slow one (random
#                   kills, every crash point, bench smoke, the CI recipe): what CI
#                   (.ci/run) runs
#   make lint       ruff over runner/, tests/ and bench/; mypy over runner/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Tests write embedded Qdrant stores, ledgers and emulator files by the thousand, and the
# embedded engine commits (fsync) once per point: on a RAM disk (/dev/shm, where there is
# one) those syncs and deletes cost nothing, and a failed test's folder is still kept.
TEST_TMPDIR := $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || echo $${TMPDIR:-/tmp})
PYTEST := TMPDIR=$(TEST_TMPDIR) $(BIN)/python -m pytest -q -n auto --dist worksteal

.PHONY: demo test test-all lint clean

demo: $(VENV)/.installed
	$(BIN)/batchrun demo

test: $(VENV)/.installed
	$(PYTEST) -m "not slow"

test-all: lint
	$(PYTEST)

lint: $(VENV)/.installed
	$(BIN)/ruff check runner tests bench
	$(BIN)/mypy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .batchrun .qdrant *.egg-info
