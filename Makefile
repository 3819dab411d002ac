# Two entry points for a fresh machine: `make book` and `make test`. Both create .venv if missing.
PROFILE ?= quick
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: book test check-book notebooks venv bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) scripts/build_book.py --profile $(PROFILE)

# Open every rendered page in headless Chromium (Debian package `chromium`): broken images, tracebacks,
# un-rendered math, horizontal overflow, chapters without "What we found". Run after `make book`.
check-book: venv
	$(PY) scripts/check_book.py

test: venv
	$(VENV)/bin/pytest tests
	DQREC_PROFILE=test $(VENV)/bin/pytest --nbval-lax --nbval-cell-timeout=900 notebooks/ -p no:cacheprovider

# Re-execute the notebooks in place under the test profile: the outputs nbval compares against.
notebooks: venv
	$(VENV)/bin/jupytext --to ipynb --update notebooks/[0-9][0-9]_*.py
	for nb in notebooks/[0-9][0-9]_*.ipynb; do DQREC_PROFILE=test $(VENV)/bin/jupyter-execute --inplace $$nb || exit 1; done

bench: venv
	$(PY) scripts/bench_data.py
	$(PY) scripts/bench_dqvae.py
	$(PY) scripts/bench_dqrec.py

clean:
	rm -rf book/_build book/notebooks results/quick results/test
