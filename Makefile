# The README's two commands: `make train` (the main job) and `make test`.
# Both create .venv and install what they need, so a fresh machine needs nothing else.
# `make test` also executes the lecture notebook, docs/lecture.ipynb (nbmake): a cell that fails fails the run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: train test bench lecture clean fashion-mnist

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
	$(PY) -m pytest -q -p no:cacheprovider tests benchmarks --benchmark-disable docs --nbmake

# The full suite, timed (the `test` target runs it once as a smoke pass), then RESULTS.md
# and results.png from its JSON. Autosaved runs under .benchmarks/ allow
# `pytest benchmarks --benchmark-only --benchmark-compare`.
bench: $(VENV)/.stamp-test
	$(PY) -m pytest -q -p no:cacheprovider benchmarks --benchmark-only \
		--benchmark-json benchmarks/results.json --benchmark-autosave \
		--benchmark-max-time=0.1 --benchmark-min-time=0.0005 --benchmark-min-rounds=5 --benchmark-disable-gc \
		--benchmark-columns=median,iqr,rounds --benchmark-sort=name
	$(PY) benchmarks/report.py benchmarks/results.json

FASHION_MNIST := /usr/share/datasets/fashion-mnist

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package when it is missing
# and apt-get can be used (root); otherwise `mlp train` falls back to digits and says so.
fashion-mnist:
	@if [ ! -e $(FASHION_MNIST)/train-images-idx3-ubyte.gz ] && [ ! -e $(FASHION_MNIST)/train-images-idx3-ubyte ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"; \
			(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) || \
			echo "Could not install dataset-fashion-mnist; training on scikit-learn's digits instead"; \
		else \
			echo "Fashion-MNIST is not installed and apt-get is not usable here; training on scikit-learn's digits instead"; \
		fi; \
	fi

# ARGS go to `mlp train`: make train ARGS="--epochs 5" for a short run.
train: $(VENV)/.stamp-train fashion-mnist
	$(PY) -m mlp train $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

$(VENV)/.stamp-docs: setup.cfg pyproject.toml $(VENV)/.stamp-base
	$(PIP) -e ".[docs]"
	touch $@

# The lecture notebook: docs/lecture.py (the source) synced into docs/lecture.ipynb, executed in
# place (the committed notebook keeps its figures), rendered to docs/lecture.html, and the
# figures of its cells tagged figure:NAME written to docs/figures/ for the README.
lecture: $(VENV)/.stamp-docs
	$(VENV)/bin/jupytext --sync docs/lecture.py
	$(VENV)/bin/jupyter nbconvert --log-level WARN --to notebook --execute --inplace docs/lecture.ipynb
	$(VENV)/bin/jupyter nbconvert --log-level WARN --to html docs/lecture.ipynb
	$(PY) docs/export_figures.py docs/lecture.ipynb docs/figures
