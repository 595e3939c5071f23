# The README's commands. Each creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench docs graphviz chromium perf clean ops-page

demo: $(INSTALLED) graphviz
	$(PY) examples/notebook_xor.py

# The suite's processes (two workers, the examples, the subprocess checks) may write bytecode
# (__pycache__, ignored by git) even where the environment sets PYTHONDONTWRITEBYTECODE, so each
# of autonet's and the tests' modules is compiled once, not again in every process.
test: $(INSTALLED) graphviz chromium perf
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n auto --dist worksteal

bench: $(INSTALLED)
	$(PY) -m pip install --quiet 'torch==2.13.0' || echo "torch==2.13.0 not installed: the PyTorch column stays empty"
	$(PY) benchmarks/run.py

# The documentation site (mkdocs.yml): strict, so a broken link or reference fails; into site/.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# docs/ops.md is generated from the op registry (tests/test_registry.py checks it), and so are the
# declarations type checkers read for Tensor's bound methods and the op exports (tests/test_typing.py).
ops-page: $(INSTALLED)
	$(PY) -c "import autonet; from autonet.ops.registry import reference; print(reference(), end='')" > docs/ops.md
	$(PY) -c "import autonet._methods as m; [open('autonet/' + p, 'w').write(t) for p, t in m.stubs().items()]"

# uv makes the venv and installs the extras' 1.1 GB in about 4 s, where venv and pip take about
# 45 s (pip resolves and unpacks one wheel at a time). uv itself is installed with pip into a
# temporary folder and removed after. Where uv cannot be had or cannot reach an index (pip's own
# configured indexes, find-links and constraints are pip's alone), venv and pip do it as before.
# The venv has pip either way: `make bench` installs torch==2.13.0 with it, from this machine's disk.
EXTRAS := .[test,examples,fast,interop,onnx,docs]
$(INSTALLED): pyproject.toml
	@tools=$$(mktemp -d); \
	{ PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --disable-pip-version-check --target "$$tools" uv \
	  && "$$tools/bin/uv" venv --quiet --seed --allow-existing --python $(PYTHON) $(VENV) \
	  && "$$tools/bin/uv" pip install --quiet --python $(PY) -e '$(EXTRAS)'; } \
	|| { echo "uv unavailable: installing with venv and pip"; $(PYTHON) -m venv $(VENV) \
	     && $(PY) -m pip install --quiet --disable-pip-version-check -e '$(EXTRAS)'; }; \
	status=$$?; rm -rf "$$tools"; exit $$status
	touch $(INSTALLED)

# $(call apt_tool,COMMAND,PACKAGE,WHAT WORKS WITHOUT IT): install a Debian package when its command
# is missing, as root where apt-get exists; elsewhere say how, and go on without it.
define apt_tool
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing $(2): apt-get install $(2)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; } \
	      || echo "warning: could not install $(2); $(3)"; \
	  else \
	    echo "$(1) not found; $(3). Install it with: sudo apt-get install $(2) (or your system's package)"; \
	  fi; }
endef

# Graphviz's `dot` draws the pictures; everything else works without it.
graphviz:
	$(call apt_tool,dot,graphviz,pictures will not be drawn)

# Linux perf runs the step profiler's test (benchmarks/perf_profile.py); it skips without perf, or
# where the kernel does not permit it (perf_event_paranoid above 2).
perf:
	$(call apt_tool,perf,linux-perf,the step profiler's test will be skipped)

# Debian's chromium runs the explorer's browser tests (through playwright); they skip without it.
chromium:
	$(call apt_tool,chromium,chromium,the explorer's browser tests will be skipped)

clean:
	rm -rf $(VENV) *.egg-info xor_graph.svg
