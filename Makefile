# The few commands that matter. Each sets itself up from a fresh clone (python3, node, make).
SHELL := /bin/bash
PYTHON ?= python3
NPM ?= npm
VENV ?= .venv
PY := $(VENV)/bin/python
# jsii silences its Node end-of-life banner only for the Node major versions listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 14,16,18,19,20,21,23
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION ?= 1

.PHONY: install install-dev cdk-cli synth check rules-doc test test-fast fuzz bench lint clean

$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The AWS CDK CLI the deploy commands drive, at the version package-lock.json pins.
node_modules/.deployline-installed: package.json package-lock.json
	@command -v node >/dev/null || { echo "make: Node.js 18 or newer runs the AWS CDK CLI and is not on PATH: install it (https://nodejs.org, brew install node, apt-get install nodejs npm)" >&2; exit 2; }
	@command -v $(NPM) >/dev/null || { echo "make: npm installs the AWS CDK CLI and is not on PATH: install it with Node.js (https://nodejs.org)" >&2; exit 2; }
	$(NPM) ci --no-audit --no-fund --ignore-scripts
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev
cdk-cli: node_modules/.deployline-installed  ## the pinned AWS CDK CLI in node_modules/

synth: $(VENV)/.runtime  ## synthesize the example deployline.yaml into cdk.out/
	$(VENV)/bin/deployline synth --config deployline.yaml --out cdk.out

check: $(VENV)/.runtime  ## check the synthesized templates in cdk.out/ (run make synth first)
	$(VENV)/bin/deployline check cdk.out

rules-doc: $(VENV)/.runtime  ## regenerate RULES.md from the rules and the catalog
	$(PY) -m deployline.checks.docs > RULES.md.tmp && mv RULES.md.tmp RULES.md

# Both run on TEST_WORKERS processes (pytest-xdist), each test module in one of them, so a module's
# synth is made once; TEST_WORKERS=0 runs in this process. tests/conftest.py marks the tiers.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(VENV)/.dev node_modules/.deployline-installed  ## the whole test suite (about 3 minutes)
	$(PYTEST)

test-fast: $(VENV)/.dev  ## the tests that neither synthesize nor run cfn-lint, checkov or the CDK CLI (under a minute)
	$(PYTEST) -m "not slow"

# The config fuzz at scale: 20x the loader and hostile-file examples, and 100 apps of 5 whole
# configs each, every config validate accepts synthesized (about 20 minutes on 2 cores).
FUZZ_SCALE ?= 20
FUZZ_APPS ?= 100
fuzz: $(VENV)/.dev  ## fuzz deployline.yaml: no traceback, no hang, every accepted config synthesizes
	DEPLOYLINE_FUZZ_SCALE=$(FUZZ_SCALE) DEPLOYLINE_FUZZ_EXAMPLES=$(FUZZ_APPS) \
		$(PY) -m pytest tests/test_config_fuzz.py -p no:cacheprovider

lint: $(VENV)/.dev  ## ruff (pinned) and mypy --strict
	$(VENV)/bin/ruff check src tests tools bench
	$(VENV)/bin/ruff format --check src tests tools bench
	$(VENV)/bin/mypy

bench: $(VENV)/.dev  ## time deployline beside its peers, in one run, and print ratios
	$(PY) bench/run.py

clean:
	rm -rf cdk.out .pytest_cache .hypothesis .mypy_cache .ruff_cache
