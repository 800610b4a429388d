# One entry point for people and CI. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install run test bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/cds serve

test: install
	$(BIN)/ruff check .
	$(BIN)/cds lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/latency.py

soak: install
	$(BIN)/python bench/soak.py --n 100000 --threads 4

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
