# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    installs into .venv, then writes the proof report and every figure
#   make test   installs into .venv, then runs the tests (slow ones too when CI is set)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test install bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m proofs
	$(PY) -m figures

test: install
	$(PY) -m pytest $(if $(CI),,-m "not slow")

bench: install
	$(PY) benchmarks/objective.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
