# Two commands: `make run` (the embedded default benchmark) and `make test`.
# Every dependency is installed at the exact version in constraints.txt; `make lock` rewrites that file from
# the current .venv (after changing dependencies), `make install` rebuilds the locked environment.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(PY) -m pip install -q -c $(CONSTRAINTS)

.PHONY: run test install lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch torchvision
	$(PIP_INSTALL) -e '.[dev,encoders]'
	touch $(STAMP)

install: $(STAMP)

lock: $(STAMP)
	$(PY) scripts/lock_constraints.py $(CONSTRAINTS)

run: $(STAMP)
	$(VENV)/bin/codiff-bench run

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
