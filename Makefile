# Azaion Edge. `make` lists the targets; `make test` is what CI runs.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Machine-wide cache for downloaded runtimes and built tools (survives clones).
export AZAION_CACHE ?= $(HOME)/.cache/azaion-edge
ORT_VERSION := 1.30.0
export AZAION_ORT_LIB ?= $(AZAION_CACHE)/onnxruntime-$(ORT_VERSION)/libonnxruntime.so.1
export AZAION_TRAINER_PYTHON ?= $(AZAION_CACHE)/trainer-venv/bin/python
export AZAION_TEST_MODELS ?= $(abspath $(CURDIR)/../shared/models)
export AZAION_BIN := $(CURDIR)/bin
GO ?= go
GO_TEST_FLAGS ?= -count=1 -timeout 60m
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/azaion/edge/sdk/version.Version=$(VERSION)
PLUGINS := $(notdir $(wildcard plugins/*/cmd/azaion-plugin-*))

.PHONY: help deps build test bench fuzz run proto clean
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_.-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install what is missing: apt packages, ONNX Runtime, test servers (idempotent)
	@scripts/deps.sh

build: ## build bin/azaion (CGO_ENABLED=0) and bin/azaion-plugin-*
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion ./daemon/cmd/azaion
	@for p in $(PLUGINS); do d=$$(dirname plugins/*/cmd/$$p/main.go); \
	  echo "$(GO) build -o bin/$$p ./$$d"; $(GO) build -ldflags '$(LDFLAGS)' -o bin/$$p ./$$d || exit 1; \
	  sha256sum bin/$$p | cut -d' ' -f1 > bin/$$p.sha256; done

test: deps build ## run every test (starts RabbitMQ and an S3 server for the run, stops them after)
	@scripts/with-services.sh $(GO) test $(GO_TEST_FLAGS) ./...

bench: deps build ## run the benchmarks; prints figures and ratios measured in one run
	@scripts/with-services.sh scripts/bench.sh

fuzz: ## run each fuzz target for FUZZTIME (default 1m); not part of `make test`
	@scripts/fuzz.sh

run: deps build ## serve the models in ./models in the foreground (Ctrl-C stops)
	@mkdir -p models .cache/state
	AZAION_MODELS_DIR=$(CURDIR)/models AZAION_STATE_DIR=$(CURDIR)/.cache/state AZAION_PLUGIN_DIR=$(CURDIR)/bin \
	  bin/azaion serve

proto: ## regenerate the gRPC code from sdk/**/*.proto (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	@scripts/proto.sh

clean: ## remove build outputs
	rm -rf bin dist

-include mk/*.mk
