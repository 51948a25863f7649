# One command each: `make demo` runs the main job on the embedded default, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export BARAPI_HOME ?= $(CURDIR)/.barapi-demo

.PHONY: install datasets postgres demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is pinned in the mock extra: the CPU wheel, never a CUDA build.
	$(PY) -m pip install --quiet -e '.[mock,plot,test]'
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST (a bundled dataset, used by tests and bench/) is Debian's dataset-fashion-mnist.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(FASHION_MNIST):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null; }

datasets: $(FASHION_MNIST)

# The store's tests run against a real PostgreSQL server too (a throwaway cluster per session).
POSTGRES := /usr/lib/postgresql
$(POSTGRES):
	$(SUDO) apt-get install -y -q postgresql >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q postgresql >/dev/null; }

postgres: $(POSTGRES)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh $(ARGS)

# Two processes (pytest-xdist); the races of real processes share one of them (loadgroup), so two
# races never fight for the same two cores.
test: install datasets postgres
	$(PY) -m pytest -q -n 2 --dist loadgroup

# bench/README.md lists every benchmark; this runs the quick one that says a change kept training's behaviour.
bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/behaviour.py | diff bench/results/behaviour.jsonl - && echo "training behaves as bench/results/behaviour.jsonl records"

clean:
	rm -rf $(VENV) .barapi-demo
