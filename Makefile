# Two entry points for a fresh machine: `make book` and `make test`. Both create .venv if missing.
PROFILE ?= quick
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: book test venv bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) scripts/build_book.py --profile $(PROFILE)

test: venv
	$(VENV)/bin/pytest tests
	$(VENV)/bin/pytest --nbval-lax --nbval-cell-timeout=900 notebooks/ -p no:cacheprovider

bench: venv
	$(PY) scripts/bench_data.py

clean:
	rm -rf book/_build book/notebooks results/quick results/test
