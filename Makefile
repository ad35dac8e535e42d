# One command for each habit. `make demo` and `make test` install what they
# need first (a project-local virtualenv with pinned moto, cfn-lint and
# cargo-lambda); nothing has to be installed by hand.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
STAMP := $(VENV)/.installed
PYTHON ?= python3
CARGO ?= cargo

.PHONY: help setup build test demo lint bench register-webhook migrate lambda-build clean web web-build browser

help:
	@echo "make demo   import the real Shopify exports and push them to the simulated shop, end to end"
	@echo "make test   every test: unit, simulator, end to end on the local stack, Lambda runtime"
	@echo "make lint   rustfmt check, clippy with warnings denied, cfn-lint on template.yaml"
	@echo "make bench  push, import, ingress and pull figures (BENCH=push|import|ingress|pull runs one; PULL_DELIVERIES=N)"
	@echo "make web    serve the push page on the local stack and print its address (PORT=… to choose it)"
	@echo "make register-webhook SHOP=… URL=…  subscribe a shop's inventory webhook (token in SHOPIFY_ACCESS_TOKEN)"
	@echo "make migrate ACCOUNTS=\"a b\" | ALL=1 [DRY_RUN=1] [FORCE=1]  run the data migrations (CATALOG_TABLE, SYNC_TABLE, AWS_REGION set)"
	@echo "make lambda-build  the five bootstrap binaries for Lambda (arm64, release), in target/lambda/"

$(STAMP): infra/local/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/local/requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# The push page (web/): npm packages exactly as package-lock.json pins them,
# the page built with Vite, and Debian's Chromium for its browser tests.
WEB_DEPS := web/node_modules/.package-lock.json

$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

web-build: $(WEB_DEPS)
	cd web && npm run --silent build

browser:
	infra/local/install-browser

build:
	$(CARGO) build --workspace --all-targets

test: setup build web-build browser
	infra/local/with-moto $(CARGO) test --workspace --all-targets --no-fail-fast

demo: setup web-build
	$(CARGO) build -p csv-import -p inventory-push -p webhook-ingress -p catalog-observer -p sync-worker -p local-stack --bins
	$(CARGO) run --quiet -p local-stack --bin demo

web: setup web-build
	$(CARGO) build -p csv-import -p inventory-push -p webhook-ingress -p sync-worker -p local-stack --bins
	$(CARGO) run --quiet -p local-stack --bin api-gateway

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

bench: setup
	$(CARGO) build --release -p local-stack --bins
	infra/local/with-moto $(CARGO) run --release --quiet -p local-stack --bin bench

# Idempotent: lists the shop's subscriptions and creates one only if none
# points at URL. The token comes from the environment, not the command line.
register-webhook:
	@test -n "$(SHOP)" -a -n "$(URL)" || { echo "usage: SHOPIFY_ACCESS_TOKEN=… make register-webhook SHOP=<shop>.myshopify.com URL=<WebhookUrl>"; exit 2; }
	$(CARGO) run --quiet -p fibermade-sync --bin register-webhook -- --shop "$(SHOP)" --url "$(URL)" $(if $(API_BASE),--api-base "$(API_BASE)")

# Offline data migrations (docs/deploy.md, "Migrating stored data"): by
# account, recorded per account in the sync table, safe to run again.
migrate:
	@test -n "$(ACCOUNTS)$(ALL)" || { echo "usage: make migrate ACCOUNTS=\"<account id> …\" | ALL=1 [DRY_RUN=1] [FORCE=1]"; exit 2; }
	$(CARGO) run --quiet -p fibermade-sync --bin migrate -- $(if $(ALL),--all-accounts,$(foreach a,$(ACCOUNTS),--account $(a))) $(if $(DRY_RUN),--dry-run) $(if $(FORCE),--force)

# The five functions as Lambda runs them: arm64 (Graviton), release, each a
# target/lambda/<function>/bootstrap. Offline: zig comes with cargo-lambda.
LAMBDA_FUNCTIONS := csv-import inventory-push webhook-ingress sync-worker catalog-observer

lambda-build: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(foreach f,$(LAMBDA_FUNCTIONS),-p $(f))
	@ls -l $(foreach f,$(LAMBDA_FUNCTIONS),target/lambda/$(f)/bootstrap)

clean:
	rm -rf $(VENV) target
