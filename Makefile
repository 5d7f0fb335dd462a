# The README's two commands: `make train` (the main job) and `make test`.
# Both create .venv and install what they need, so a fresh machine needs nothing else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: train test bench clean

$(VENV)/.stamp-base:
	$(PYTHON) -m venv $(VENV)
	touch $@

# pip's resolver is the cache key: reinstall whenever the metadata changes.
$(VENV)/.stamp-test: setup.cfg pyproject.toml $(VENV)/.stamp-base
	$(PIP) -e ".[test]"
	touch $@

$(VENV)/.stamp-train: setup.cfg pyproject.toml $(VENV)/.stamp-base
	$(PIP) -e ".[cli,sklearn]"
	touch $@

test: $(VENV)/.stamp-test
	$(PY) -m pytest -q -p no:cacheprovider tests benchmarks --benchmark-disable

train: $(VENV)/.stamp-train
	$(PY) -m mlp train

clean:
	rm -rf $(VENV) build *.egg-info
