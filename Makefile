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
# SAM CLI lives in its own virtualenv too (`make sam-venv`; it pins many packages; never in $(VENV)).
SAM_VENV ?= .venv-sam
SAM ?= $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
# Lambda architecture to build for; must match the template's Architecture parameter (the layer's compiled
# dependencies are per architecture), so sam-build passes it to both.
ARCH ?= arm64

.PHONY: venv test lint validate demo bench bench-quick bench-org clean sam-venv sam-build sam-check local-image \
	local-image-stop local-image-clean local-invoke test-container report sandbox rehearsal

# The pinned requirements, then this checkout as an editable install without dependencies (they are the pinned
# ones): it puts the `vpce-guard` command in $(VENV)/bin and makes devkit and vpce_guard importable anywhere.
$(STAMP): requirements/dev.txt requirements/runtime.txt requirements/constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

$(CHECKOV_STAMP): requirements/checkov.txt requirements/checkov-constraints.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV) || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt \
		-c requirements/checkov-constraints.txt
	@touch $(CHECKOV_STAMP)

## The whole test suite (unit, integration under moto, end-to-end against a moto server) plus lint.
test: lint
	$(PY) -m pytest -n 2 -q -m "not container and not rehearsal and not calibration"

## ruff, cfn-lint and checkov (CloudFormation checks on the SAM template; suppressions are justified inline
## in the template's Metadata). checkov runs offline (--skip-download): no guideline links, same checks.
lint: $(STAMP) $(CHECKOV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint $(TEMPLATES)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(addprefix -f ,$(TEMPLATES))

## `sam validate --lint` for every template, with the pinned SAM CLI of .venv-sam (or SAM=/path/to/sam).
validate: $(if $(filter $(SAM_VENV)/bin/sam,$(SAM)),$(SAM_STAMP))
	@for t in $(TEMPLATES); do SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region us-east-1 -t $$t || exit 1; done

## The story: a moto server seeded with drift, the real handler fixes it, the ledger shows what happened.
demo: $(STAMP)
	$(VENV)/bin/vpce-guard demo

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

## The organization-scale simulation (docs/org-scale.md): calibrates on the real sweep worker against a moto
## server, simulates 100 / 1,000 / 5,000 accounts x 17 Regions, writes benchmarks/results/org-scale.{json,md} and
## docs/org-scale.md's table, then checks the model against the calibration runs (tests/calibration). ~10 min.
bench-org: $(STAMP)
	$(PY) -m benchmarks.bench_org
	$(PY) -m pytest -q -m calibration tests/calibration

bench-quick: $(STAMP) $(C7N_STAMP)
	$(PY) -m benchmarks.run --quick

## `sam local invoke` in a real container: the on-change function against a moto server (needs root once).
test-container: $(STAMP) $(SAM_STAMP)
	$(PY) -m pytest -q -m container -rs

## The demo's world on a moto server that stays up (Ctrl-C stops it), for invoking by hand.
sandbox: $(STAMP)
	$(VENV)/bin/vpce-guard sandbox $(ARGS)

## The ledger, read back: current findings (ARGS="--region … history vpce-… --account …" and so on).
report: $(STAMP)
	$(VENV)/bin/vpce-guard report $(ARGS)

$(SAM_STAMP): requirements/sam.txt requirements/sam-constraints.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV) || python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/sam.txt \
		-c requirements/sam-constraints.txt
	@touch $(SAM_STAMP)

## SAM CLI 1.170.0 in .venv-sam.
sam-venv: $(SAM_STAMP)

## sam build without Docker (makefile build method; dependencies vendored for ARCH with pip --platform).
sam-build: $(SAM_STAMP)
	LAMBDA_ARCH=$(ARCH) SAM_CLI_TELEMETRY=0 $(SAM) build --parameter-overrides Architecture=$(ARCH)

## Both checks a deploy depends on: every template validates and lints, and the hub builds without Docker.
sam-check: validate sam-build

## A Docker engine (Debian's docker.io) and the Lambda Python 3.13 base image built from local parts.
local-image:
	scripts/local-image.sh up

## Stops the engine local-image started (its containers first); images stay for next time.
local-image-stop:
	scripts/local-image.sh stop

## Stops the engine and deletes its data and the built root filesystem (about 0.5 GB).
local-image-clean:
	scripts/local-image.sh clean

## sam local invoke of the on-change function, in the local image, against a moto server.
local-invoke: $(STAMP) $(SAM_STAMP)
	$(PY) -m devkit.sam_local $(ARGS)

# LocalStack lives in its own virtualenv on Python 3.13 (its release needs 3.13; pins in requirements/).
LOCALSTACK_VENV ?= .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3.13)

$(LOCALSTACK_STAMP): requirements/localstack.txt requirements/localstack-constraints.txt
	@test -x $(LOCALSTACK_VENV)/bin/python || $(PYTHON313) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/localstack.txt \
		-c requirements/localstack-constraints.txt
	@touch $(LOCALSTACK_STAMP)

## The deploy rehearsal (not part of `make test`; docs/rehearsal.md): sam deploy of the hub and spoke templates
## into LocalStack, drift fixed by the deployed functions, one sweep, then everything torn down (needs root once).
rehearsal: $(STAMP) $(SAM_STAMP) $(LOCALSTACK_STAMP)
	$(PY) -m devkit.rehearsal $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache $(C7N_VENV) $(SAM_VENV) $(LOCALSTACK_VENV) .local/rehearsal
