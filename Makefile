# ssmkit — common tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BIN ?= bin/ssmkit
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VPKG := github.com/ssmkit/ssmkit/pkg/cmd/version
LDFLAGS := -s -w -X $(VPKG).version=$(VERSION) -X $(VPKG).commit=$(COMMIT) -X $(VPKG).date=$(DATE)

.PHONY: build demo test test-short bench bench-e2e fuzz lint unused cross tidy-check clean

## build: one static binary at bin/ssmkit
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ssmkit
	@echo "built $(BIN) ($$($(BIN) --version))"

## demo: build, then run the sandbox tour (scripts/demo.sh); stops everything it starts
demo: build
	scripts/demo.sh

## test: lint, then every test with the race detector (starts and stops moto itself)
test: lint unused cross
	scripts/test.sh

## test-short: the quick tests for a save-and-run loop (~70 s warm): no moto, no terraform init/validate/test, no long transfers
test-short:
	$(GO) test -race -short ./...

## bench: benchmarks that print ratios against a baseline measured in the same run
bench:
	scripts/bench.sh

## bench-e2e: issue 12's end-to-end table against raw TCP and the official path
##            (BENCH_E2E_ARGS="-size 128MiB -runs 1" for a short run; PROFILE_DIR=dir for profiles)
bench-e2e:
	scripts/bench-e2e.sh $(BENCH_E2E_ARGS)

## fuzz: run every fuzz target briefly (FUZZTIME=30s for longer)
fuzz:
	scripts/fuzz.sh

## unused: staticcheck and deadcode at pinned versions (go run pkg@version); part of make test (~1 min)
unused:
	scripts/unused.sh

## cross: the binary still builds for Windows (the rest of the code is Unix; ~2 min with a cold cache)
cross:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/ssmkit

## lint: gofmt, go vet, go mod tidy must leave no diff
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	scripts/tidy-check.sh

clean:
	rm -rf bin .state
