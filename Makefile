# Two commands do all the set-up; each creates the virtualenv (.venv) on first use.
#   make demo   install, then tag 300 real videos against the built-in emulator (free)
#   make test   install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

demo: $(VENV)/.installed
	$(BIN)/batchrun demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .batchrun .qdrant *.egg-info
