# One command for each habit. `make demo` and `make test` install what they
# need first (a project-local virtualenv with pinned moto, cfn-lint and
# cargo-lambda); nothing has to be installed by hand.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
STAMP := $(VENV)/.installed
PYTHON ?= python3
CARGO ?= cargo

.PHONY: help setup build test demo lint bench register-webhook migrate lambda-build clean web web-build browser chaos fuzz fuzz-short fuzz-tools load

help:
	@echo "make demo   import the real Shopify exports and push them to the simulated shop, end to end"
	@echo "make test   every test: unit, simulator, end to end on the local stack, Lambda runtime"
	@echo "make lint   rustfmt check, clippy with warnings denied, cfn-lint on template.yaml"
	@echo "make chaos  the fault matrix: Shopify and DynamoDB faults, killed workers, a ledger of every sale (CHAOS_SEED=n CHAOS_RUNS=n)"
	@echo "make bench  one table: push, bulk, import, functions, ingress, catalog and pull figures, and the targets (BENCH=<part> runs one; BENCH_FULL=1 adds the 1,000,000-row import with writes)"
	@echo "make fuzz   run each fuzz target for FUZZ_SECONDS (300) under libFuzzer; make fuzz-short for 30 s each"
	@echo "make load   the webhook ingress under wrk and the worker draining a backlog of pull jobs (LOAD=ingress|drain)"
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

# The fault matrix in full (docs/chaos.md); `make test` runs its short form
# through tests/local-stack/tests/chaos.rs.
chaos: setup
	$(CARGO) build -p local-stack --bins
	infra/local/with-moto $(CARGO) run --quiet -p local-stack --bin chaos

# One table of figures, measured side by side in one run, written to
# docs/performance.md. The functions part needs the host release binaries
# (cold starts) and the arm64 bootstraps (their sizes).
bench: setup
	$(CARGO) build --release -p local-stack --bins $(foreach f,$(LAMBDA_FUNCTIONS),-p $(f))
	if [ -z "$${BENCH:-}" ] || [[ ",$${BENCH}," == *",functions,"* ]]; then \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(foreach f,$(LAMBDA_FUNCTIONS),-p $(f)); \
	fi
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

# Fuzzing: the targets in fuzz/ (a workspace of its own, so the main build
# never compiles libFuzzer) under libFuzzer, with AddressSanitizer. cargo-fuzz
# is pinned and installed into .local/. It passes nightly-only flags
# (-Zsanitizer, -Cpasses) to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, for this build only. Each target runs on its own,
# one after the other (2 cores), for FUZZ_SECONDS; `make fuzz` keeps what it
# finds new in fuzz/corpus/<target> (minimise with `cargo fuzz cmin` before
# committing), `make fuzz-short` keeps nothing. A crash leaves its input in
# fuzz/artifacts/<target>/; copied to fuzz/regressions/<target>/, `cargo
# test` replays it through the same target (shared/tests/fuzz_corpus.rs).
FUZZ_TARGETS := csv_reader webhook_delivery function_url_event stream_record job_message
FUZZ_SECONDS ?= 300
FUZZ := RUSTC_BOOTSTRAP=1 $(CURDIR)/.local/bin/cargo-fuzz

fuzz-tools:
	infra/local/install-fuzz

# $(1): seconds a target; $(2): where new inputs go (empty: the corpus).
define run-fuzz
	cd fuzz && $(FUZZ) build
	@mkdir -p fuzz/logs
	@for t in $(FUZZ_TARGETS); do \
	  case $$t in csv_reader) dict=dicts/csv.dict; len=16384;; *) dict=dicts/json.dict; len=8192;; esac; \
	  out=$(2); if [ -n "$$out" ]; then out="$$out/$$t"; mkdir -p "$$out"; fi; \
	  echo "== $$t: $(1) s"; \
	  ( cd fuzz && $(FUZZ) run $$t $$out corpus/$$t -- -max_total_time=$(1) -dict=$$dict -max_len=$$len \
	      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ) 2> fuzz/logs/$$t.log \
	    || { tail -40 fuzz/logs/$$t.log; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE' fuzz/logs/$$t.log || true; \
	done
endef

fuzz: fuzz-tools
	$(call run-fuzz,$(FUZZ_SECONDS),)

fuzz-short: fuzz-tools
	$(call run-fuzz,30,$(shell mktemp -d))

# Load on loopback: Debian's wrk against the ingress served in process, and
# the worker draining a 10,000-message backlog; bounded in time (LOAD_SECONDS,
# LOAD_DRAIN_LIMIT_SECONDS) and count (LOAD_BACKLOG). Not part of `make test`.
load: setup
	infra/local/install-wrk
	$(CARGO) build --release -p local-stack --bin load
	infra/local/with-moto $(CARGO) run --release --quiet -p local-stack --bin load
