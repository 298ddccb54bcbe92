# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    installs into .venv, writes the proof report and every figure, and ends with
#               one summary line; it fails when a claim is not as expected or a figure check fails
#   make test   installs into .venv, then runs the tests (slow ones too when CI is set)
# and, for a course page:
#   make tutorials  installs the [docs] extra, executes every tutorial and writes HTML to results/tutorials
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RESULTS ?= results

TUTORIALS := $(sort $(wildcard tutorials/[0-9]*.py))
TUTORIAL_HTML ?= $(RESULTS)/tutorials

.PHONY: run test install bench clean tutorials

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The optional [torch] extra (detection, steering, pipelines). CI always installs it so that
# its tests run there; locally `make test TORCH=1` does. torch==2.13.0 first: a CPU wheel.
.PHONY: install-torch
$(VENV)/.installed-torch: $(VENV)/.installed
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,torch]'
	touch $@

install-torch: $(VENV)/.installed-torch

# Both halves always run; the old reports are removed first so that a half that crashes
# shows up as missing in the summary, whose exit status is the target's.
run: install
	@rm -f $(RESULTS)/proofs/report.json $(RESULTS)/figures/*.json
	$(PY) -m proofs --output $(RESULTS)/proofs; \
	$(PY) -m figures --output $(RESULTS)/figures --cache $(RESULTS)/cache; \
	$(PY) -m figures.summary --proofs $(RESULTS)/proofs/report.json --figures $(RESULTS)/figures

test: install $(if $(or $(CI),$(TORCH)),install-torch)
	$(PY) -m pytest $(if $(CI),,-m "not slow")

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

# Each tutorial (a Jupytext percent script) becomes a notebook executed in tutorials/ (so that
# `solutions` imports), then an HTML page, progress bars reduced to their last state
# (CoalesceStreamsPreprocessor); the tutorials write their own files to a temp folder.
tutorials: $(VENV)/.docs-installed
	@mkdir -p $(TUTORIAL_HTML)
	@for script in $(TUTORIALS); do \
		name=$$(basename $$script .py); \
		echo "tutorial $$name"; \
		$(PY) -m jupytext --quiet --to ipynb --execute --run-path tutorials \
			--output $(TUTORIAL_HTML)/$$name.ipynb $$script || exit 1; \
		$(PY) -m nbconvert --log-level WARN --to html --CoalesceStreamsPreprocessor.enabled=True \
			--output-dir $(TUTORIAL_HTML) \
			$(TUTORIAL_HTML)/$$name.ipynb || exit 1; \
	done
	@echo "HTML in $(TUTORIAL_HTML)/"

bench: install
	$(PY) benchmarks/objective.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
