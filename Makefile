# gonogo — make targets. `make run` and `make test` work on a fresh machine
# (they install redis-server from Debian when it is missing and we are root).

GO      ?= go
BIN     := bin/harness
PKGS    := ./...

.PHONY: run test test-ha test-episodes test-browser fuzz bench bench-baseline bench-sweeps bench-sharded lint build deps browser-deps clean images compose-test fastapi-deps fastapi-test fastapi-compose-test explore-seed explore-mutants

build: $(BIN)

$(BIN): $(shell find . \( -name '*.go' -o -name '*.yaml' \) -not -path './reports/*/*' 2>/dev/null) go.mod go.sum
	$(GO) build -o $(BIN) ./cmd/harness

deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing redis-server redis-tools redis-sentinel (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools redis-sentinel >/dev/null; \
	  else echo "redis-server missing: sudo apt-get install -y redis-server redis-tools redis-sentinel" >&2; exit 4; fi; }
	@# the Debian package starts a system redis on 6379; the harness never uses it.

# Chromium from Debian for the browser_* scenarios (pages with the native
# EventSource, driven over the DevTools protocol). Installed when missing and
# we are root; otherwise a warning: those scenarios are then INCONCLUSIVE
# with the reason, never GO. `make test` does not install it (a 100+ MB
# download): its browser tests skip saying why; .ci/run installs it.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: the browser_* scenarios will be INCONCLUSIVE; sudo apt-get install -y chromium" >&2; fi; }

# The release gate (Day 12) against the default: a redis-server per
# scenario (process target), embedded Toxiproxy, the hardened profile;
# about 3.5 minutes. Reports land in reports/<run id>/. make run exits with
# the harness's code: 0 GO, 1 NO-GO, 2 INCONCLUSIVE or interrupted, 3 bad
# input, 4 harness failure.
run: deps browser-deps build
	@./$(BIN) run --gate release --profile hardened --report-dir reports; code=$$?; \
	  echo "make run: harness exited $$code (0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input, 4 harness failure); the report is under reports/"; \
	  exit $$code

# -parallel 4: the scenario tests marked parallel spend their time waiting on
# scenario timelines (the package used 9 s of CPU in 120 s of wall time), so
# four at once cut the scenarios package from ~330 s to ~150 s; tests that
# measure latency stay sequential.
test: deps fastapi-deps
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -parallel 4 -timeout 9m $(PKGS)
	@$(MAKE) --no-print-directory fuzz

# Replicated Redis (issue 21): the sentinel scenarios in full against hardened
# (durable acknowledgement on, its default there), hardened without it and
# seed, with their numbers in the test log, then the production-ha gate
# (hardened GO). About 5 minutes; make test runs the short TestFailover.
test-ha: deps build
	GONOGO_HA=1 $(GO) test -count=1 -timeout 10m -v -run 'TestFailoverHA|TestFailover$$|TestSentinel|TestCluster' ./scenarios/ ./target/ ./impl/hardened/
	./$(BIN) run --gate production-ha --profile hardened --report-dir reports

# The quota scenarios, 10 runs each, against a layer that takes the first
# quota error for a success: with their episodes every run must be NO-GO;
# with one episode how often is logged (about 5 minutes).
test-episodes: deps
	GONOGO_EPISODES=10 $(GO) test -count=1 -parallel 1 -timeout 20m -v -run '^TestQuotaEpisodes$$' ./scenarios/

# The browser clients and the conformance command: their tests with Chromium
# installed, then the browser scenarios for both profiles (hardened GO, seed
# NO-GO: that run's exit code 1 is expected and not a failure here).
test-browser: deps browser-deps build
	GONOGO_BROWSER_ALL=1 $(GO) test -race -count=1 -run 'Browser|Conform' ./scenarios/ ./conform/ ./cmd/harness/
	./$(BIN) run --scenario browser_outage,browser_restart,browser_cross_origin --profile hardened --report-dir reports
	./$(BIN) run --scenario browser_outage,browser_restart,browser_cross_origin --profile seed --report-dir reports; test $$? = 1

# Fuzz targets, <name>:<package>, each run for FUZZTIME by make test (the
# loaders of hostile input must never panic); corpora and any crasher in
# <package>/testdata/fuzz/<name>/. Minimizing a new input is capped at 2s
# (the default, 60s, would spend a short run minimizing).
FUZZ     := FuzzParse:./scenarios FuzzParseGates:./reports FuzzRequestDecoding:./impl/service \
            FuzzParseURL:./target
FUZZTIME ?= 6s
fuzz:
	@for f in $(FUZZ); do \
	  echo "fuzz $${f%%:*} $${f#*:} ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${f%%:*}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s "$${f#*:}" || exit 1; \
	done

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...

ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

# Harness overhead: redis-benchmark -c 50 and the harness's raw XADD at 50
# workers against one spawned redis-server, in one run, interleaved over
# BASELINE_ROUNDS rounds; prints both medians and the ratio (goal >= 0.9).
# BASELINE_OPS sets the request count of each.
BASELINE_OPS ?= 200000
BASELINE_ROUNDS ?= 3
bench-baseline: deps build
	./$(BIN) bench --preset baseline --workers 50 --ops $(BASELINE_OPS) --warmup 1s --rounds $(BASELINE_ROUNDS) --redis-benchmark

# The sweeps of issue 20 at full size, seed and hardened, reports in
# reports/sweeps/ (about 25 minutes; not in CI). OUTAGES is the outage
# sweep's lengths in seconds.
OUTAGES ?= 10,60,600
bench-sweeps: deps build
	-./$(BIN) bench --sweep members=10,100,1000,10000 --workers 8 --duration 5s --report reports/sweeps
	-./$(BIN) bench --sweep flows=1,10,100,1000,10000 --workers 16 --duration 5s --report reports/sweeps
	-./$(BIN) bench --sweep event_bytes=100,1000,10000,65536 --workers 16 --duration 5s --report reports/sweeps
	-./$(BIN) bench --sweep sse_clients=10,100,1000,10000 --profile hardened --rate 2 --duration 10s --report reports/sweeps
	-./$(BIN) bench --sweep outage_s=$(OUTAGES) --profile hardened --rate 1000 --report reports/sweeps

# A sharded bench with docker-compose.bench.yml (SHARDS replicas, merged).
bench-sharded:
	./images/bench-sharded.sh

# harness explore against the seed profile for EXPLORE_BUDGET (3m): a
# failure found and shrunk to a minimal scenario in reports/explore/seed-<seed>/.
EXPLORE_BUDGET ?= 3m
EXPLORE_SEED   ?= 1
explore-seed: deps build
	./$(BIN) explore --profile seed --budget $(EXPLORE_BUDGET) --seed $(EXPLORE_SEED) --out reports/explore/seed-$(EXPLORE_SEED); \
	  code=$$?; [ $$code = 1 ] && echo "make explore-seed: found what seed breaks (exit 1, as expected)" && exit 0; exit $$code

# harness explore against each mutant of the mutation tests (in-process
# profiles the harness binary does not carry, so through the test binary):
# a table of time to find, runs needed, minimal fault and length;
# EXPLORE_MUTANT_BUDGET bounds each mutant.
EXPLORE_MUTANT_BUDGET ?= 3m
explore-mutants: deps
	GONOGO_EXPLORE_MUTANTS=1 GONOGO_EXPLORE_BUDGET=$(EXPLORE_MUTANT_BUDGET) GONOGO_EXPLORE_OUT=$(CURDIR)/reports/explore/mutants \
	  $(GO) test -count=1 -timeout 0 -v -run '^TestExploreMutants$$' ./scenarios/

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) run $(ACTIONLINT) .github/workflows/*.yml

# Local images, no registry needed (FROM scratch): gonogo/redis:7,
# gonogo/toxiproxy, gonogo/harness. Re-runs skip unchanged images.
images:
	./images/build.sh

# docker-compose.test.yml: up, wait for health, eventbus gate, down -v;
# exits with the harness's code.
compose-test: images
	./images/compose-test.sh

# The tracker's own Python stack (examples/fastapi) judged by URL: a process
# redis-server, Toxiproxy on loopback, two uvicorn instances, the eventbus
# gate (GATE) by `harness run --service`, and uvicorn instances the harness
# starts, kills and pauses itself for the instance scenarios (--instance-cmd;
# INSTANCE_CMD= turns that off); exits with the harness's code (the plan as
# written is NO-GO). FIXES=keepalive: only the plan's socket-option
# fix; FIXES=all: the fixed layer. Nothing is left running (gate.sh checks).
PYTHON  ?= /usr/bin/python3
FIXES   ?=
GATE    ?= eventbus
fastapi-test: deps fastapi-deps build bin/toxiproxy
	GONOGO_FIXES="$(FIXES)" GATE="$(GATE)" PYTHON="$(PYTHON)" ./examples/fastapi/gate.sh

# The same with Redis and Toxiproxy as containers (docker-compose.test.yml,
# profile fastapi; local images, nothing pulled): the harness can kill, pause
# and restart Redis, so kill_aof, kill_no_aof and pause run too.
fastapi-compose-test: fastapi-deps build
	./images/build.sh redis toxiproxy
	REDIS_MODE=container GONOGO_FIXES="$(FIXES)" GATE="$(GATE)" PYTHON="$(PYTHON)" ./examples/fastapi/gate.sh

# Debian's python3-fastapi (0.92), python3-uvicorn (0.17) and python3-redis
# (4.3), for the system python3; nothing from pip.
fastapi-deps:
	@$(PYTHON) -c 'import fastapi, uvicorn, redis.asyncio' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing python3-fastapi python3-uvicorn python3-redis (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-fastapi python3-uvicorn python3-redis >/dev/null; \
	  else echo "missing: sudo apt-get install -y python3-fastapi python3-uvicorn python3-redis" >&2; exit 4; fi; }

# Toxiproxy's own server from the module cache (the version go.mod requires).
bin/toxiproxy: go.mod go.sum
	$(GO) build -o $@ github.com/Shopify/toxiproxy/v2/cmd/server

clean:
	rm -rf bin
