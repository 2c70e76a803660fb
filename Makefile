# The two commands a fresh machine needs (see README):
#   make repro   create .venv, install, run the whole DVC pipeline on the bundled sample
#   make test    create .venv, install, run the test suite
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
# dvc.yaml runs `python stages/...`: make that the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench clean-venv

setup: $(VENV)/.installed

# Re-install only when the declared dependencies change.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

repro: setup
	dvc repro

test: setup
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
