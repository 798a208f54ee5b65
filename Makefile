# hopx-kernel: `make demo` runs an example notebook on the embedded sandbox; `make test` runs everything.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOK ?= notebooks/01-basic-streaming.ipynb

.PHONY: setup demo test lab bench bench-smoke clean

setup: $(STAMP)

# The venv, the package (editable) with its test extras, and the kernelspec inside the venv.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m hopx_kernel install --sys-prefix
	touch $(STAMP)

demo: setup
	$(PY) -m hopx_kernel.demo $(NOTEBOOK)

test: setup
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	$(PY) -m bench

bench-smoke: setup
	$(PY) -m bench --smoke

clean:
	rm -rf $(VENV) build *.egg-info out
