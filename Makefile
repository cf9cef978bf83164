# Two commands on a fresh machine with Python 3 and make:  `make demo`  and  `make test`.
# Each creates (or refreshes, when setup.py changed) the virtual environment .venv with the CPU
# build of TensorFlow and this package installed in editable mode (with Apache Beam, so the tests
# of delg-extract --runner run).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo lint format clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu,beam,test]"
	@touch $(STAMP)

install: $(STAMP)

# One worker per core, whole files per worker (module fixtures are built once): most of the
# suite's time is subprocesses importing TensorFlow on one core each.
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile tests

demo: $(STAMP)
	$(PY) -m delg_tools.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf demo_output .pytest_cache build *.egg-info
