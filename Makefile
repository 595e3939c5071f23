# The README's commands. Each creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench graphviz chromium clean ops-page

demo: $(INSTALLED) graphviz
	$(PY) examples/notebook_xor.py

test: $(INSTALLED) graphviz chromium
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) -m pip install --quiet 'torch==2.13.0' || echo "torch==2.13.0 not installed: the PyTorch column stays empty"
	$(PY) benchmarks/run.py

# docs/ops.md is generated from the op registry (tests/test_registry.py checks it).
ops-page: $(INSTALLED)
	$(PY) -c "import autonet; from autonet.ops.registry import reference; print(reference(), end='')" > docs/ops.md

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,examples,fast,interop]'
	touch $(INSTALLED)

# Graphviz's `dot` draws the pictures; everything else works without it.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Graphviz: apt-get install graphviz"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; } \
	      || echo "warning: could not install Graphviz; pictures will not be drawn"; \
	  else \
	    echo "Graphviz 'dot' not found; pictures will not be drawn. Install it with"; \
	    echo "  sudo apt-get install graphviz  |  brew install graphviz  |  conda install -c conda-forge graphviz"; \
	  fi; }

# Debian's chromium runs the explorer's browser tests (through playwright); they skip without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium: apt-get install chromium"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "warning: could not install Chromium; the explorer's browser tests will be skipped"; \
	  else \
	    echo "Chromium not found; the explorer's browser tests will be skipped. Install it with"; \
	    echo "  sudo apt-get install chromium  |  brew install --cask chromium"; \
	  fi; }

clean:
	rm -rf $(VENV) *.egg-info xor_graph.svg
