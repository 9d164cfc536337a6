# gonogo — make targets. `make run` and `make test` work on a fresh machine
# (they install redis-server from Debian when it is missing and we are root).

GO      ?= go
BIN     := bin/harness
PKGS    := ./...

.PHONY: run test fuzz bench bench-baseline lint build deps clean images compose-test explore-seed explore-mutants

build: $(BIN)

$(BIN): $(shell find . -name '*.go' -not -path './reports/*/*' 2>/dev/null) go.mod go.sum
	$(GO) build -o $(BIN) ./cmd/harness

deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing redis-server redis-tools (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; \
	  else echo "redis-server missing: sudo apt-get install -y redis-server redis-tools" >&2; exit 4; fi; }
	@# the Debian package starts a system redis on 6379; the harness never uses it.

# The release gate (Day 12) against the default: a redis-server per
# scenario (process target), embedded Toxiproxy, the hardened profile;
# about 3.5 minutes. Reports land in reports/<run id>/. make run exits with
# the harness's code: 0 GO, 1 NO-GO, 2 INCONCLUSIVE or interrupted, 3 bad
# input, 4 harness failure.
run: deps build
	@./$(BIN) run --gate release --profile hardened --report-dir reports; code=$$?; \
	  echo "make run: harness exited $$code (0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 bad input, 4 harness failure); the report is under reports/"; \
	  exit $$code

test: deps
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 9m $(PKGS)
	@$(MAKE) --no-print-directory fuzz

# Fuzz targets, <name>:<package>, each run for FUZZTIME by make test (the
# loaders of hostile input must never panic); corpora and any crasher in
# <package>/testdata/fuzz/<name>/. Minimizing a new input is capped at 2s
# (the default, 60s, would spend a short run minimizing).
FUZZ     := FuzzParse:./scenarios FuzzParseGates:./reports FuzzRequestDecoding:./impl/service \
            FuzzParseURL:./chaos/target
FUZZTIME ?= 10s
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

clean:
	rm -rf bin
