# hopx-kernel: `make demo` runs an example notebook on the embedded sandbox; `make test` runs everything.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOK ?= notebooks/01-basic-streaming.ipynb

.PHONY: setup bytecode demo test test-fast lint lab bench bench-smoke clean

setup: $(STAMP)

# The venv and the package (editable) with its test and lint extras. Installing the package
# registers the kernelspec in the venv (share/jupyter/kernels/hopx-remote-python).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The package's bytecode, as a wheel install writes it: an editable install writes none, and
# with PYTHONDONTWRITEBYTECODE set (as on these machines) every kernel, server and sandbox
# process would compile the package again at start (~20 ms each). Only changed files are
# compiled again.
bytecode: setup
	$(PY) -m compileall -q hopx_kernel

demo: bytecode
	$(PY) -m hopx_kernel.demo $(NOTEBOOK)

test: bytecode lint
	$(PY) -m pytest

# the fast loop: everything but the slow suites, a file per core (make test stays serial:
# its timing-sensitive suites get the machine to themselves)
test-fast: bytecode
	$(PY) -m pytest -m "not slow" -n auto --dist loadfile

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

bench: bytecode
	$(PY) -m bench

bench-smoke: bytecode
	$(PY) -m bench --smoke

clean:
	rm -rf $(VENV) build dist *.egg-info out
