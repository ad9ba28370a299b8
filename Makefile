# vpce-guard developer commands. Everything runs from a virtualenv that `make venv` builds from pinned files.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo clean

$(STAMP): requirements/dev.txt requirements/runtime.txt requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

## The whole test suite (unit, integration under moto, end-to-end against a moto server) plus lint.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

## The story: a moto server seeded with drift, the real handler fixes it, the ledger shows what happened.
demo: $(STAMP)
	$(PY) -m devkit.demo

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache
