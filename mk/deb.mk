# .deb packages for amd64 and arm64 (issue 12): `make deb`, `make config`,
# and the arm64 plugin tests under qemu, which `make test` runs.
NFPM_VERSION := v2.45.2
export NFPM := $(AZAION_CACHE)/bin/nfpm-$(NFPM_VERSION)
export ORT_VERSION
export AZAION_ORT_LIB_ARM64 ?= $(AZAION_CACHE)/onnxruntime-$(ORT_VERSION)-arm64/libonnxruntime.so.1
export AZAION_ARM64_SYSROOT ?= $(AZAION_CACHE)/sysroot-arm64-bookworm
export DEB_VERSION ?= $(shell packaging/deb-version.sh)
export DEB_MAINTAINER ?= Azaion <dev@azaion.com>
export AZAION_DIST := $(CURDIR)/dist
ARM64_SR := $(AZAION_ARM64_SYSROOT)
# cgo for arm64 against the sysroot (scripts/deps/62-arm64-sysroot.sh).
ARM64_CGO_ENV := CGO_ENABLED=1 GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
  PKG_CONFIG_SYSROOT_DIR=$(ARM64_SR) PKG_CONFIG_LIBDIR=$(ARM64_SR)/usr/lib/aarch64-linux-gnu/pkgconfig:$(ARM64_SR)/usr/share/pkgconfig \
  CGO_CFLAGS=--sysroot=$(ARM64_SR) CGO_CXXFLAGS=--sysroot=$(ARM64_SR) CGO_LDFLAGS=--sysroot=$(ARM64_SR)

.PHONY: deb config test-arm64
deb: deps ## build dist/azaion_<version>_amd64.deb and _arm64.deb (version from the git tag, else 0.0.0~git<date>.<sha>)
	@packaging/deb.sh amd64 arm64

config: ## regenerate packaging/azaion.yaml (the packaged config) from the daemon's defaults
	$(GO) run ./daemon/internal/confdoc/gen -o packaging/azaion.yaml

# The arm64 ONNX plugin's conformance suite (through its gRPC shim, as the
# daemon calls it), cross-compiled and run under qemu (scripts/qemu-arm64.sh).
# Skipped: the live-stream case, which asserts real-time throughput (10
# results within 30 s of a 120 fps stream) that emulation at about 1/100 of
# native speed cannot give; the video file case covers the arm64 decoding.
# TestRunThread: a session run from a thread of its own (ortcall.go).
ARM64_TEST_RUN ?= ^(TestConformance|TestRunThread)$$/grpc
ARM64_TEST_SKIP ?= TestConformance/grpc/Video/Live
# And the two-thread JPEG decoder's tests (exactness against TurboJPEG,
# damaged files, the letterbox written beside it): its Huffman decoder and
# that letterbox are this project's own C and C++ code (~40 s); and the
# kept threads that run the decodes and the session (plugins/internal/cthread).
ARM64_IMAGING_RUN ?= TestSplit|TestDecodeParallel|TestLetterboxBesideDecode
test-arm64: deps ## run the arm64 ONNX plugin's conformance suite under qemu (ARM64_TEST_RUN, ARM64_TEST_SKIP pick the tests)
	cd plugins/onnx && env $(ARM64_CGO_ENV) AZAION_ORT_LIB=$(AZAION_ORT_LIB_ARM64) \
	  $(GO) test -count=1 -timeout 30m -exec $(CURDIR)/scripts/qemu-arm64.sh -run '$(ARM64_TEST_RUN)' -skip '$(ARM64_TEST_SKIP)' -v . \
	  | grep -E '^(\s*--- |PASS|FAIL|ok|panic)|_test\.go:|\.go:[0-9]+: '; exit $${PIPESTATUS[0]}
	cd plugins/internal/imaging && env $(ARM64_CGO_ENV) \
	  $(GO) test -count=1 -timeout 20m -exec $(CURDIR)/scripts/qemu-arm64.sh -run '$(ARM64_IMAGING_RUN)' -v . \
	  | grep -E '^(\s*--- |PASS|FAIL|ok|panic)|_test\.go:|\.go:[0-9]+: '; exit $${PIPESTATUS[0]}
	cd plugins/internal/cthread && env $(ARM64_CGO_ENV) \
	  $(GO) test -count=1 -timeout 10m -exec $(CURDIR)/scripts/qemu-arm64.sh -v . \
	  | grep -E '^(\s*--- |PASS|FAIL|ok|panic)|_test\.go:|\.go:[0-9]+: '; exit $${PIPESTATUS[0]}

test: deb test-arm64
