# moebi: `make run` plays the scenario on the embedded engine; `make test` runs every test.
# Everything this file needs beyond Rust, Python 3 and Terraform it installs itself, into
# git-ignored virtual environments under .venv/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO   ?= cargo
PYTHON  ?= python3
VENV    := .venv
MOTO    := $(VENV)/aws/bin/moto_server
LAMBDA  := $(VENV)/lambda/bin/cargo-lambda
AWSCLI  := $(VENV)/awscli/bin/aws
MINISTACK := $(VENV)/ministack/bin/ministack
# cargo-lambda finds zig (from the ziglang package) through the venv's python on PATH.
LAMBDA_PATH := $(abspath $(VENV)/lambda/bin):$(PATH)

MOTO_VERSION         := 5.2.5
CARGO_LAMBDA_VERSION := 1.9.2
ZIG_VERSION          := 0.13.0
AWSCLI_VERSION       := 1.46.3
MINISTACK_VERSION    := 1.5.33
# MiniStack signs Cognito tokens and checks an HTTP API's JWT authorizer with it (without it
# every token is refused: the front door on the rehearsal).
CRYPTOGRAPHY_VERSION := 46.0.7
MINISTACK_JWT        := $(VENV)/ministack/.cryptography-$(CRYPTOGRAPHY_VERSION)
# The rehearsal's live check (scripts/live-check.py) opens WebSockets beside the AWS CLI.
WEBSOCKETS_VERSION   := 15.0.1
LIVE_PY              := $(VENV)/awscli/.websockets-$(WEBSOCKETS_VERSION)

# `make watch` / `make invoke` / `make emulator`: where the local emulator listens, and the
# region the watched functions run in.
EMULATOR_PORT ?= 4566
REGION        ?= us-east-1
FN            ?= chat-send
EVENT         ?= events/chat-send/sqs-batch.json

FUNCTIONS := chat-send moebi-reply stock-add stock-status front-door sockets push
# Where cargo builds (honours CARGO_TARGET_DIR); evaluated only where used.
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

.PHONY: help run test test-rust test-faults test-faults-beside-infra test-lambda sim load load-rehearsal fuzz fmt lint build watch invoke emulator replay bench deploy clean

help:
	@echo "make run    play the seed's scenario on the embedded engine"
	@echo "make test   every test: unit, black-box, both engines (emulator), Lambda binaries, Terraform"
	@echo "make lint   cargo fmt --check, clippy -D warnings, terraform fmt -check"
	@echo "make fmt    format Rust and Terraform"
	@echo "make build  release zips for arm64 (<target dir>/lambda/<fn>/bootstrap.zip)"
	@echo "make emulator | watch | invoke FN=chat-send EVENT=events/... REGION=us-east-1"
	@echo "make sim    the deterministic simulation: SEEDS=1000 seeds, or SEED=n to replay one"
	@echo "make fuzz   the decoders' property tests, CASES=100000 per property"
	@echo "make load   an open-model load on the embedded engine: a sweep of rates, percentiles, the knee, plots (RATE=200 for one rate)"
	@echo "make drill  lose a region under load on the rehearsal, bring it back, audit (lost 0, doubled 0), plot"
	@echo "make bench  functions vs a Python peer (speed, memory, size, calls, cost), engine, simulation"
	@echo "make replay FILE=events/...   make deploy"
	@echo "make deploy-emulator   the dress rehearsal: infra/ on MiniStack with the real bootstraps, the scenario on it"

include infra/infra.mk
include benches/bench.mk

# The demo needs only the CLI's embedded engine: its dependencies are built optimised (as every
# build's are, profile.dev.package."*"), moebi's own code at opt-level 0 (33 s instead of 100 s
# of CPU; make test builds moebi with other features anyway, so nothing it builds is lost).
RUN_FEATURES := --no-default-features --features cli
run:
	@ls $(TARGET_DIR)/debug/deps/libdynoxide*.rlib >/dev/null 2>&1 || echo "make run: first build:" \
	  "compiling the embedded DynamoDB (dynoxide, with SQLite), the AWS SDK's DynamoDB client and" \
	  "the CLI: 6 to 7 minutes on 2 cores (docs/testing.md, 'The first build'); later runs start at once."
	CARGO_PROFILE_DEV_OPT_LEVEL=0 $(CARGO) build $(RUN_FEATURES) --bin moebi
	@$(TARGET_DIR)/debug/moebi demo

$(MOTO):
	$(PYTHON) -m venv $(VENV)/aws
	$(VENV)/aws/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'

$(AWSCLI):
	$(PYTHON) -m venv $(VENV)/awscli
	$(VENV)/awscli/bin/pip install --quiet --disable-pip-version-check 'awscli==$(AWSCLI_VERSION)'

$(LAMBDA):
	$(PYTHON) -m venv $(VENV)/lambda
	$(VENV)/lambda/bin/pip install --quiet --disable-pip-version-check \
		cargo-lambda==$(CARGO_LAMBDA_VERSION) ziglang==$(ZIG_VERSION)

# The whole suite, each step timed (a table at the end). One build: the dev profile, every
# target at once (so the tests, the CLI and the functions' bootstraps share one feature set and
# one compilation of the dependencies); the Lambda test runs those bootstraps, and the shipped
# profile is built by `make build` and measured by `make bench`. The emulator is started on a
# free port and stopped afterwards, also on failure.
TIMES := $(VENV)/test-times.tsv
TIMED  = scripts/timed.sh $(TIMES)
SIM_SEEDS_TEST ?= 10000
test: $(MOTO) $(LAMBDA) $(AWSCLI) $(LIVE_PY) $(BROWSER_DEPS) $(CHROMIUM) $(MINISTACK) $(MINISTACK_JWT)
	@mkdir -p $(VENV) && rm -f $(TIMES) && date +%s.%N >$(TIMES).start
	$(TIMED) "build (dev, every target)" $(CARGO) build --workspace --all-targets
	scripts/with-emulator.sh $(MOTO) -- $(MAKE) --no-print-directory test-rust test-faults-beside-infra test-lambda MOEBI_LAMBDA_BUILD=debug
	$(MAKE) --no-print-directory debug-zips
	@echo "deploy-emulator runs beside the simulation (it mostly waits: Terraform's waiters, queue timeouts); its output follows the simulation's"
	@( $(TIMED) "deploy-emulator (beside the simulation)" $(MAKE) --no-print-directory deploy-emulator \
	     MOEBI=$(TARGET_DIR)/debug/moebi ARTIFACTS_DIR=$(TARGET_DIR)/lambda-debug >$(VENV)/deploy-emulator.log 2>&1 ) & rehearsal=$$! sim=0 deploy=0; \
	  $(TIMED) "simulation ($(SIM_SEEDS_TEST) seeds)" $(TARGET_DIR)/debug/moebi sim --jobs $(SIM_JOBS) --seeds $(SIM_SEEDS_TEST) || sim=$$?; \
	  wait $$rehearsal || deploy=$$?; cat $(VENV)/deploy-emulator.log; \
	  [ $$sim -eq 0 ] || { echo "make test: the simulation failed"; exit 1; }; \
	  [ $$deploy -eq 0 ] || { echo "make test: deploy-emulator failed (above)"; exit 1; }
	$(TIMED) "simulation (naive design)" $(TARGET_DIR)/debug/moebi sim --jobs $(SIM_JOBS) --naive --seeds 1000
	$(TIMED) "simulation (one share per region, failing over)" $(TARGET_DIR)/debug/moebi sim --jobs $(SIM_JOBS) --shares --seeds 1000
	@scripts/timed.sh --table $(TIMES)

# `moebi load` on the embedded engine (docs/performance.md, "Under load"): a sweep of offered
# rates, LOAD_DURATION each on a fresh state, or one rate (RATE=200); percentiles overall, per
# kind and per hop, the knee, and the plots (SVG and PNG) in LOAD_OUT. MIX=chat=1,add=1 SEED=n.
LOAD_SWEEP    ?= 100,200,300,400,500,600,800
LOAD_DURATION ?= 10s
LOAD_OUT      ?= .moebi/load
load:
	$(CARGO) build --quiet --bin moebi
	$(TARGET_DIR)/debug/moebi load $(if $(RATE),--rate $(RATE),--sweep $(LOAD_SWEEP)) \
	  --duration $(LOAD_DURATION) --out $(LOAD_OUT) $(if $(SEED),--seed $(SEED)) $(if $(MIX),--mix $(MIX))

# `moebi load` through the rehearsal's HTTP APIs (after `make deploy-emulator KEEP=1`): a sweep
# with the Rust functions, then with the Python peers of stock-add and chat-send in their place,
# both curves in one plot (scripts/load-rehearsal.sh). LOAD_SWEEP, LOAD_DURATION, LOAD_OUT, SEED.
load-rehearsal: $(AWSCLI) $(BENCH_PY)
	$(CARGO) build --quiet --bin moebi
	MOEBI="$(TARGET_DIR)/debug/moebi" AWS_CLI="$(AWSCLI)" BENCH_PYTHON="$(BENCH_PY)" \
	  ARTIFACTS_DIR="$(or $(ARTIFACTS_DIR),$(DEBUG_ZIPS_DIR))" \
	  $(if $(LOAD_SWEEP_REHEARSAL),LOAD_SWEEP=$(LOAD_SWEEP_REHEARSAL)) LOAD_DURATION=$(LOAD_DURATION) \
	  LOAD_OUT=$(abspath $(LOAD_OUT))-rehearsal scripts/load-rehearsal.sh

# The decoders' property tests, long: CASES random and mutated payloads per property.
CASES ?= 100000
fuzz:
	PROPTEST_CASES=$(CASES) $(CARGO) test --release --test decoders

# The deterministic simulation: SEEDS seeds from a random first one (printed),
# then the rejected design until it loses updates. `make sim SEED=n` replays one schedule.
SEEDS    ?= 10000
SIM_JOBS ?= 2
SIM      := $(CARGO) run --quiet --bin moebi -- sim --jobs $(SIM_JOBS)
sim:
ifdef SEED
	$(SIM) --seed $(SEED)
else
	$(SIM) --seeds $(SEEDS)
	$(SIM) --naive --seeds 1000
	$(SIM) --shares --seeds 1000
endif

test-rust:
	$(TIMED) "cargo test" $(CARGO) test --workspace --all-targets

# The AWS engine through a proxy that fails the emulator's API calls at a rate; prints its figures.
# Needs the emulator (MOEBI_EMULATOR_URL): `make test` starts one.
test-faults:
	$(TIMED) "faults" $(CARGO) test --quiet --test faults -- --ignored --nocapture

# The fault suite with the terraform checks beside it (`make test`): the suite mostly waits on
# its retries (82 s of CPU in 181 s of wall time), the checks mostly compute (218 s of CPU in
# 156 s), so together they fit two cores. (Beside `cargo test`, which keeps both cores busy,
# both took twice as long.)
test-faults-beside-infra:
	@( $(TIMED) "terraform checks (beside the faults)" $(MAKE) --no-print-directory infra-test >$(VENV)/infra-test.log 2>&1 ) & infra=$$! faults=0 checks=0; \
	  $(MAKE) --no-print-directory test-faults || faults=$$?; \
	  wait $$infra || checks=$$?; echo "terraform checks (beside the faults):"; cat $(VENV)/infra-test.log; \
	  [ $$faults -eq 0 ] || { echo "make test: the fault suite failed (above)"; exit 1; }; \
	  [ $$checks -eq 0 ] || { echo "make test: the terraform checks failed (above)"; exit 1; }

# Each function's release bootstrap under cargo-lambda's Runtime API emulator, fed every fixture.
test-lambda: $(LAMBDA)
	PATH="$(LAMBDA_PATH)" MOEBI_LAMBDA_BUILD=$(or $(MOEBI_LAMBDA_BUILD),function) $(TIMED) "lambda" scripts/lambda-test.sh

fmt:
	$(CARGO) fmt --all
	terraform fmt -recursive infra

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	terraform fmt -check -recursive infra

build: $(LAMBDA)
	PATH="$(LAMBDA_PATH)" $(CARGO) lambda build --profile function --arm64 --output-format zip \
		$(foreach f,$(FUNCTIONS),-p $(f))
	@ls -l $(foreach f,$(FUNCTIONS),$(TARGET_DIR)/lambda/$(f)/bootstrap.zip)

# A long-running emulator on $(EMULATOR_PORT) with every resource of the topology created.
emulator: $(MOTO)
	@echo "emulator on http://127.0.0.1:$(EMULATOR_PORT); stop with Ctrl-C"
	@( for i in $$(seq 1 50); do sleep 0.2; \
	     $(CARGO) run --quiet --bin moebi -- --engine aws --endpoint-url http://127.0.0.1:$(EMULATOR_PORT) setup \
	       >/dev/null 2>&1 && echo "resources created" && break; done ) &
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing $(MOTO) -H 127.0.0.1 -p $(EMULATOR_PORT)

watch: $(LAMBDA)
	PATH="$(LAMBDA_PATH)" AWS_ENDPOINT_URL=http://127.0.0.1:$(EMULATOR_PORT) \
		AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=$(REGION) \
		MOEBI_REGION=$(REGION) MOEBI_TABLE=moebi MOEBI_BUS=moebi RUST_LOG=info \
		$(CARGO) lambda watch

invoke: $(LAMBDA)
	PATH="$(LAMBDA_PATH)" $(CARGO) lambda invoke $(FN) --data-file $(EVENT)

replay:
	$(CARGO) run --quiet --bin moebi -- replay $(FILE)

# Side by side in one run: each function's bootstrap and the Python a team would write, under
# one Runtime API emulator, against dynoxide and moto (benches/lambda_bench.py: table, JSON,
# cost); the embedded engine end to end (criterion); the simulation's seeds per second.
bench: bench-lambda
	$(CARGO) bench --bench engine -- --noplot
	$(SIM) --seeds 200

deploy: build
	cd infra && terraform init && terraform apply -var artifacts_dir=$(TARGET_DIR)/lambda

clean:
	rm -rf .moebi $(TARGET_DIR)/lambda $(TARGET_DIR)/lambda-native $(TARGET_DIR)/lambda-debug

# The dress rehearsal (scripts/deploy-emulator.sh): infra/ applied by Terraform to MiniStack (an
# AWS API emulator that runs Lambda functions as local processes) with the real bootstraps, built
# for this machine; the scenario published with the AWS CLI, every effect done by a bootstrap
# MiniStack runs (rules, SQS event source mappings, global tables); then compared with what
# `moebi setup` makes in a second MiniStack. ARTIFACTS_DIR=<dir of <fn>/bootstrap.zip> skips the
# build (`make test` passes the dev build's bootstraps); DOCTOR=VAR runs every bootstrap without
# the environment variable VAR, and the run must fail. Builds moebi first unless MOEBI=path.
$(MINISTACK):
	$(PYTHON) -m venv $(VENV)/ministack
	$(VENV)/ministack/bin/pip install --quiet --disable-pip-version-check 'ministack==$(MINISTACK_VERSION)' 'cryptography==$(CRYPTOGRAPHY_VERSION)'

# A MiniStack venv made before cryptography was part of it gets it here (the stamp names the version).
# The browser test (browser/test.mjs): playwright-core from the npm registry (its lock file pins
# it), driving Debian's Chromium package (browser downloads cannot reach the internet here).
CHROMIUM     := /usr/bin/chromium
BROWSER_DEPS := browser/node_modules/playwright-core/package.json
$(BROWSER_DEPS): browser/package.json browser/package-lock.json
	cd browser && npm ci --no-audit --no-fund --silent
	touch $@
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null

$(LIVE_PY): $(AWSCLI)
	$(VENV)/awscli/bin/pip install --quiet --disable-pip-version-check 'websockets==$(WEBSOCKETS_VERSION)'
	touch $@

$(MINISTACK_JWT): $(MINISTACK)
	$(VENV)/ministack/bin/pip install --quiet --disable-pip-version-check 'cryptography==$(CRYPTOGRAPHY_VERSION)'
	touch $@

# The shipped profile for this machine's architecture (MiniStack runs the bootstraps here; the
# arm64 zips of `make build` fail with "Exec format error"), beside them in lambda-native/.
NATIVE_LAMBDA_DIR = $(TARGET_DIR)/lambda-native
.PHONY: deploy-emulator deploy-emulator-stop lambda-native debug-zips
lambda-native: $(LAMBDA)
	PATH="$(LAMBDA_PATH)" $(CARGO) lambda build --profile function --output-format zip \
		--target $$(uname -m)-unknown-linux-gnu --lambda-dir $(NATIVE_LAMBDA_DIR) $(foreach f,$(FUNCTIONS),-p $(f))

# The dev build's bootstraps (<target dir>/debug/<fn>), each zipped as `bootstrap`.
DEBUG_ZIPS_DIR = $(TARGET_DIR)/lambda-debug
debug-zips:
	scripts/zip-bootstraps.sh $(TARGET_DIR)/debug $(DEBUG_ZIPS_DIR) $(FUNCTIONS)

deploy-emulator: $(MINISTACK) $(MINISTACK_JWT) $(AWSCLI) $(LIVE_PY) $(BROWSER_DEPS) $(CHROMIUM)
	$(if $(MOEBI),,$(CARGO) build --quiet --bin moebi)
	$(if $(ARTIFACTS_DIR),,$(MAKE) --no-print-directory lambda-native)
	export MOEBI="$(or $(MOEBI),$(TARGET_DIR)/debug/moebi)" AWS_CLI="$(AWSCLI)" \
		ARTIFACTS_DIR="$(or $(ARTIFACTS_DIR),$(NATIVE_LAMBDA_DIR))" DOCTOR="$(DOCTOR)" KEEP="$(KEEP)"; \
	scripts/deploy-emulator.sh || { status=$$?; [ $$status -eq 75 ] || exit $$status; \
	  echo "deploy-emulator: the apply failed on the emulator (above); once more, on a fresh one"; \
	  scripts/deploy-emulator.sh; }

# Losing a region on the rehearsal (README, "Losing a region"): a deployment with its users
# signed in (deploy-emulator KEEP=1 UNTIL=users), then scripts/drill.py under moebi load:
# DRILL_DOWN goes down DRILL_DOWN_AT s in and comes back at DRILL_UP_AT s; the audit and the plot
# go to DRILL_OUT. The MiniStack is stopped afterwards, also on failure.
DRILL_OUT     ?= .moebi/drill
DRILL_DOWN    ?= us-east-1
DRILL_RATE    ?= 4
DRILL_SECONDS ?= 120
DRILL_DOWN_AT ?= 20
DRILL_UP_AT   ?= 90
.PHONY: drill
drill: $(MINISTACK) $(MINISTACK_JWT) $(AWSCLI)
	$(CARGO) build --workspace --bins
	$(MAKE) --no-print-directory debug-zips
	MOEBI="$(TARGET_DIR)/debug/moebi" AWS_CLI="$(AWSCLI)" ARTIFACTS_DIR="$(DEBUG_ZIPS_DIR)" KEEP=1 UNTIL=users \
	  scripts/deploy-emulator.sh || { scripts/deploy-emulator.sh stop; exit 1; }
	status=0; MOEBI="$(TARGET_DIR)/debug/moebi" $(dir $(AWSCLI))python scripts/drill.py $(VENV)/rehearsal.json $(DRILL_OUT) \
	  --down $(DRILL_DOWN) --rate $(DRILL_RATE) --duration $(DRILL_SECONDS) --down-at $(DRILL_DOWN_AT) --up-at $(DRILL_UP_AT) \
	  $(if $(SEED),--seed $(SEED)) || status=$$?; scripts/deploy-emulator.sh stop; exit $$status

# `make deploy-emulator KEEP=1` leaves the rehearsal's MiniStack running, described in
# .venv/rehearsal.json (URLs, user pool, app client, the users' passwords); this stops it.
deploy-emulator-stop:
	scripts/deploy-emulator.sh stop
