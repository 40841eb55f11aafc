# mcpgate — `make dev`, `make test`, `make build` work on a fresh clone:
# each installs what is missing first (only from crates.io and npm).

SHELL := bash
.DEFAULT_GOAL := build
.PHONY: dev test build deps rust-tools node-deps worker unit e2e lint size clean bench bench-smoke profile load fuzz reseal chromium deploy deploy-check

CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CARGO_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

WORKER_BUILD_VERSION := 0.8.7
# The wasm-bindgen CLI must match the library version Cargo.lock pins.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock)

# worker-build would download these from the internet; use registry installs instead.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild

RUST_SOURCES := $(shell find src -name '*.rs' -o -name '*.js') Cargo.toml Cargo.lock .cargo/config.toml

deps: rust-tools node-deps

rust-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@worker-build --version 2>/dev/null | grep -qx "$(WORKER_BUILD_VERSION)\|worker-build $(WORKER_BUILD_VERSION)" || cargo install worker-build --version $(WORKER_BUILD_VERSION) --locked
	@wasm-bindgen --version 2>/dev/null | grep -q " $(WASM_BINDGEN_VERSION)" || cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

node-deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The worker bundle and its static assets; wrangler's [build] step calls this
# too (a no-op when fresh).
worker: build/worker/shim.mjs build/console/admin/openapi.json

# Static assets (binding ASSETS): the admin console and the OpenAPI document,
# served under /admin/ by the worker (src/shell/console.rs).
CONSOLE_SOURCES := $(wildcard console/*) docs/openapi.json

build/console/admin/openapi.json: $(CONSOLE_SOURCES)
	@rm -rf build/console && mkdir -p build/console/admin
	cp console/* build/console/admin/
	node -e 'JSON.parse(require("fs").readFileSync("docs/openapi.json","utf8"))'
	cp docs/openapi.json $@

# worker-build keeps the wasm names section (for stack traces); the deployed bundle
# does not need it: dropping it saves ~40 KB gzip. build/named/ keeps a copy with
# names for CPU profiles (bench/profile.mjs); it is not part of the upload.
WASM_FEATURES := $(addprefix --enable-,mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)

build/worker/shim.mjs: $(RUST_SOURCES)
	worker-build --release
	@mkdir -p build/named && cp build/index_bg.wasm build/named/index_bg.wasm
	wasm-opt build/index_bg.wasm --strip-debug --strip-producers $(WASM_FEATURES) -o build/index_bg.wasm
	@touch $@

build: deps worker

unit: node-deps
	cargo test --locked
	npm run --silent unit:js

e2e: build chromium
	npm run --silent e2e

test: deps unit e2e bench-smoke deploy-check

# The console's browser test (tests/e2e/console.test.mjs) drives Debian's
# Chromium through playwright-core; nothing is downloaded by npm.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; }

lint: rust-tools
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	cargo fmt --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --locked -- -D warnings

# Proves the Worker deploys without a Cloudflare account: the upload wrangler
# would make, written to .wrangler/deploy-check, and its size.
deploy-check: build
	@set -o pipefail; rm -rf .wrangler/deploy-check; \
	  npx wrangler deploy --dry-run --outdir .wrangler/deploy-check 2>&1 | tee .wrangler/deploy-check.log \
	  | grep -E "Total Upload|assets directory|exiting now"
	@ls -l .wrangler/deploy-check/*.wasm .wrangler/deploy-check/*.js | awk '{print "  " $$5 " bytes  " $$9}'

# Deploys to the Cloudflare account wrangler is logged in to (docs/deploy.md).
# DEPLOY_FLAGS passes more to wrangler, e.g. --secrets-file or --var.
DEPLOY_FLAGS ?=
deploy: build
	npx wrangler deploy $(DEPLOY_FLAGS)

size: build
	@rm -rf .wrangler/dry-run && npx wrangler deploy --dry-run --outdir .wrangler/dry-run 2>&1 | grep -iE "upload|gzip" || true
	@ls -l build/worker/*.wasm && gzip -9c build/worker/*.wasm | wc -c | sed 's/^/wasm gzip bytes: /'

# Benchmarks, see bench/run.mjs. `bench` writes bench/results.md and
# bench/latency.png (installs wrk via apt and matplotlib into bench/.venv);
# `bench-smoke` runs the same harness on tiny settings into bench/.smoke/.
BENCH_SH := bash bench/bench.sh

bench: build
	$(BENCH_SH) full

bench-smoke: build
	$(BENCH_SH) smoke

# CPU profiles of the worker inside workerd (bench/profile.mjs), one per
# scenario, summarised into bench/profile.md.
PROFILE_SCENARIOS := healthz models 2kb notools prose stream cold

profile: build
	cargo build --release --quiet --manifest-path bench/upstream/Cargo.toml
	@echo "# Where mcpgate's CPU goes (V8 CPU profiles in workerd)" > bench/profile.md
	@echo >> bench/profile.md
	@echo 'Written by `make profile` (bench/profile.mjs). Self time per function while the scenario ran, per request; sampling (50 µs) slows the isolate, so read shares, not absolute times. `(program)` and `(idle)` are the runtime outside JS and wasm.' >> bench/profile.md
	@for s in $(PROFILE_SCENARIOS); do node bench/profile.mjs --scenario $$s --top 25 > /dev/null && { echo; echo "## $$s"; echo; cat bench/.profile/$$s.md; } >> bench/profile.md; done

# Reliability. `load`: the long load test (tests/load/load.test.mjs:
# >= 1000 concurrent SSE streams per round, good and bad requests at saturation,
# every byte checked). `fuzz`: the property tests of the rewriters and scrubber
# with a long budget (FUZZ_CASES cases each; `make test` runs them with 256).
FUZZ_CASES ?= 100000

load: build
	node --test --test-concurrency=1 tests/load/

fuzz: deps
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release --locked --lib -- property any_chunking

dev: build
	node scripts/dev.mjs

# Master-key rotation: re-seal every stored secret under the current MASTER_KEY
# of the gateway at MCPGATE_URL (README: "Rotating MASTER_KEY").
reseal:
	@node scripts/reseal.mjs

clean:
	rm -rf build target .wrangler
