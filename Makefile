PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=9080 SIM_PORT=9081`: the demo's gateway and simulator ports
PORT ?= 8080
SIM_PORT ?= 8081

.PHONY: run test e2e clients lint schema bench clean graphiql-assets

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/live-gateway demo --port $(PORT) --sim-port $(SIM_PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The browser tests: Debian's Chromium (apt-get, as root, when it is missing) driven by Playwright.
CHROMIUM := /usr/bin/chromium
E2E_STAMP := $(VENV)/.installed-e2e

$(E2E_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,e2e]'
	touch $(E2E_STAMP)

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

e2e: $(E2E_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -m e2e tests/e2e

# The README's GraphQL Code Generator configurations generate and compile (tsc --strict) against schema.graphql.
clients: $(STAMP)
	mkdir -p docs/clients/generated
	$(BIN)/live-gateway possible-types --output docs/clients/generated/possibleTypes.json
	cd docs/clients && npm install --no-audit --no-fund --silent && npm run -s check

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/live-gateway export-schema --output schema.graphql

graphiql-assets:
	scripts/graphiql-assets.sh

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
