# vpce-guard developer commands. Everything runs from a virtualenv that `make venv` builds from pinned files.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# checkov pins many packages of its own, so it gets its own virtualenv.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# Every CloudFormation template of the project: the hub (SAM) and, when present, the member-account ones.
TEMPLATES := template.yaml $(wildcard templates/*.yaml)
SAM ?= sam

.PHONY: venv test lint validate demo bench bench-quick clean

$(STAMP): requirements/dev.txt requirements/runtime.txt requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

$(CHECKOV_STAMP): requirements/checkov.txt requirements/checkov-constraints.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV) || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt \
		-c requirements/checkov-constraints.txt
	@touch $(CHECKOV_STAMP)

## The whole test suite (unit, integration under moto, end-to-end against a moto server) plus lint.
test: lint
	$(PY) -m pytest -n 2 -q

## ruff, cfn-lint and checkov (CloudFormation checks on the SAM template; suppressions are justified inline
## in the template's Metadata). checkov runs offline (--skip-download): no guideline links, same checks.
lint: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint $(TEMPLATES)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(addprefix -f ,$(TEMPLATES))

## `sam validate --lint` for every template (needs SAM CLI: SAM=/path/to/sam; keep it in its own virtualenv).
validate:
	@for t in $(TEMPLATES); do $(SAM) validate --lint --region us-east-1 -t $$t || exit 1; done

## The story: a moto server seeded with drift, the real handler fixes it, the ledger shows what happened.
demo: $(STAMP)
	$(PY) -m devkit.demo

## Benchmarks (not part of `make test`): AWS calls against their lower bounds, sweeps, cold start, Cloud Custodian.
## Writes benchmarks/results/latest.{md,json}; takes a few minutes.
C7N_VENV := benchmarks/.venv-c7n
C7N_STAMP := $(C7N_VENV)/.installed

$(C7N_STAMP): benchmarks/requirements-c7n.txt
	@test -x $(C7N_VENV)/bin/python || $(PYTHON) -m venv $(C7N_VENV) || python3 -m venv $(C7N_VENV)
	$(C7N_VENV)/bin/pip install --quiet --disable-pip-version-check -r benchmarks/requirements-c7n.txt
	@touch $(C7N_STAMP)

bench: $(STAMP) $(C7N_STAMP)
	$(PY) -m benchmarks.run

bench-quick: $(STAMP) $(C7N_STAMP)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache $(C7N_VENV)
