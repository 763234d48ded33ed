package onnx

import (
	"testing"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/backend/conformance"
	"github.com/azaion/edge/sdk/model"
)

func TestConformance(t *testing.T) {
	b := newBackend(t, Config{})
	t.Run("direct", func(t *testing.T) {
		conformance.Run(t, conformance.Options{Backend: b, Models: testenv.Models(t), Format: model.FormatONNX})
	})
	t.Run("grpc", func(t *testing.T) {
		conformance.Run(t, conformance.Options{Backend: conformance.OverGRPC(t, b), Models: testenv.Models(t), Format: model.FormatONNX})
	})
}
