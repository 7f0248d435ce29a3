# Gregor: the two commands a newcomer needs are `make run` and `make test`.
GO ?= go
PKGS := ./...
# Seeds derived from the commit (or "dev" outside git) for the simulator.
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)

.PHONY: all build run test test-deps test-short vet fmt-check conformance bench fuzz sim-long clean

all: build

build:
	$(GO) build -o bin/gregor ./cmd/gregor

## run: start the local 3-broker development cluster on 127.0.0.1:9092-9094
run: build
	./bin/gregor dev

## test: everything CI runs (formatting, vet, unit, property, simulation, cluster tests)
test: fmt-check vet test-deps
	GREGOR_COMMIT=$(COMMIT) $(GO) test -count=1 -timeout 14m $(PKGS)

## test-deps: install the real Kafka clients the compatibility tests run (kcat, kafkajs)
test-deps:
	bash .ci/test-deps.sh

test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## conformance: the conformance scripts against Apache Kafka 4.1.1 (one KRaft JVM, three for the
## brokers=3 scripts, one cluster at a time; built from Maven Central on first use) and Gregor side by
## side; prints per API matched/different/only-in-Kafka.
## REWRITE=1 records Kafka's answers into cmd/gregor/testdata/conformance/*.txt.
conformance:
	$(GO) test -count=1 -v -timeout 10m -run '^TestConformance$$' ./cmd/gregor/conformance -kafka $(if $(REWRITE),-rewrite)

## bench: Gregor vs Apache Kafka 4.1.1 (3-node KRaft, fetched from Maven Central on first use; needs java and mvn,
## else no Kafka column) vs kfake side by side: produce/consume, latency at a fixed load, CPU per record; then
## transactions (both write docs/performance.md), then one pass of every Go micro-benchmark
bench:
	$(GO) run ./cmd/gregor bench suite --kafka=true --write docs/performance.md
	$(GO) run ./cmd/gregor bench suite --txn --write docs/performance.md
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 $(PKGS)

## fuzz: run every fuzz target for a short while (FUZZTIME=30s to change)
FUZZTIME ?= 15s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## sim-long: thousands of seeded simulations (SEEDS=1-5000 to change)
SEEDS ?= 1-3000
sim-long:
	$(GO) run ./cmd/gregor sim --seeds $(SEEDS)

clean:
	rm -rf bin
