#!/usr/bin/env bash
# Regenerates Go code for every .proto under sdk/. The output is committed, so
# builds and CI never need protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc >/dev/null || { echo "proto: install protobuf-compiler" >&2; exit 1; }
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
for f in $(find sdk -name '*.proto'); do
  protoc -I . --go_out=. --go_opt=module=github.com/azaion/edge \
    --go-grpc_out=. --go-grpc_opt=module=github.com/azaion/edge "$f"
done
