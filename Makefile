# One command each: `make demo` runs the main job on the embedded default, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export BARAPI_HOME ?= $(CURDIR)/.barapi-demo

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is pinned in the mock extra: the CPU wheel, never a CUDA build.
	$(PY) -m pip install --quiet -e '.[mock,test]'
	touch $@

install: $(VENV)/.installed

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh $(ARGS)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) .barapi-demo
