package distribution_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/azaion/edge/daemon/internal/catalog"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/container"
	"github.com/azaion/edge/sdk/model"
)

// bundleParts are an ONNX, an RKNN (rk3588) and a TensorRT (sm 8.9)
// artifact with distinct bytes.
func bundleParts() (map[string][]byte, []distribution.Part) {
	bytesOf := map[string][]byte{
		"m.onnx":        bytes.Repeat([]byte("onnx-bytes "), 50000),
		"m-rk3588.rknn": bytes.Repeat([]byte("rknn-bytes "), 40000),
		"m_sm89.engine": bytes.Repeat([]byte("engine-bytes "), 30000),
	}
	part := func(file, format, be, dev string) distribution.Part {
		return distribution.Part{Descriptor: model.Descriptor{Name: "x", Format: format, InputWidth: 160, InputHeight: 160,
			Artifacts: []model.Artifact{{Backend: be, Device: dev, Format: format, File: file}}},
			Open: func() ([]byte, error) { return bytes.Clone(bytesOf[file]), nil }}
	}
	return bytesOf, []distribution.Part{
		part("m_sm89.engine", model.FormatEngine, catalog.BackendTensorRT, "8.9"),
		part("m-rk3588.rknn", model.FormatRKNN, catalog.BackendRKNN, "rk3588"),
		part("m.onnx", model.FormatONNX, catalog.BackendONNX, ""),
	}
}

// TestBundlePublishPull: a version published as a bundle gives each
// device the artifact that fits its backends, and the device asks the API
// for that artifact's small part only.
func TestBundlePublishPull(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want, parts := bundleParts()
	b, err := e.publisher.PublishBundle(ctx, "det", "3", "", parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Artifacts) != 3 || b.Artifacts[2].Size != int64(len(want["m.onnx"])) {
		t.Fatalf("bundle %+v", b)
	}
	tests := []struct {
		name    string
		targets []catalog.Target
		file    string
	}{
		{"cpu with onnx", []catalog.Target{{Backend: catalog.BackendONNX, Devices: []backend.Device{{Kind: backend.DeviceCPU}}}}, "m.onnx"},
		{"rk3588", []catalog.Target{{Backend: catalog.BackendRKNN, Devices: []backend.Device{{Kind: backend.DeviceNPU, Compute: "rk3588"}}},
			{Backend: catalog.BackendONNX}}, "m-rk3588.rknn"},
		{"gpu of another architecture", []catalog.Target{{Backend: catalog.BackendTensorRT, Devices: []backend.Device{{Kind: backend.DeviceCUDA, Compute: "9.0"}}},
			{Backend: catalog.BackendONNX}}, "m.onnx"},
		{"gpu it was built for", []catalog.Target{{Backend: catalog.BackendTensorRT, Devices: []backend.Device{{Kind: backend.DeviceCUDA, Compute: "8.9"}}}}, "m_sm89.engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			edge := e.edge(t, alice, e.hw)
			edge.Choose = func(arts []model.Artifact) (model.Artifact, string, error) { return catalog.Select(arts, tc.targets) }
			before := len(e.api.Gets())
			p, err := edge.Pull(ctx, "det", "3", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Bytes, want[tc.file]) {
				t.Fatalf("pulled %d bytes, not %s", len(p.Bytes), tc.file)
			}
			d := p.Manifest.Descriptor
			if len(d.Artifacts) != 1 || d.Artifacts[0].File != tc.file || d.Name != "det" || d.Version != "3" {
				t.Fatalf("stored descriptor %+v", d)
			}
			gets := e.api.Gets()[before:]
			wantGets := []string{"models/det@3.bundle", "models/det@3." + tc.file + ".small"}
			if !slices.Equal(gets, wantGets) {
				t.Fatalf("API requests %v, want %v", gets, wantGets)
			}
		})
	}
	t.Run("no fitting artifact", func(t *testing.T) {
		edge := e.edge(t, alice, e.hw)
		edge.Choose = func(arts []model.Artifact) (model.Artifact, string, error) {
			return catalog.Select(arts, []catalog.Target{{Backend: catalog.BackendRKNN, Devices: []backend.Device{{Kind: backend.DeviceNPU, Compute: "rk3566"}}}})
		}
		if _, err := edge.Pull(ctx, "det", "3", nil); !errors.Is(err, catalog.ErrNoArtifact) {
			t.Fatalf("err = %v, want ErrNoArtifact", err)
		}
	})
	t.Run("index pointing at another artifact's part", func(t *testing.T) {
		// Swap the ONNX entry's small part for the RKNN one: the container
		// header names its own artifact, so the pull refuses it.
		e.api.SetResource("models", "det@3.m.onnx.small", e.api.Resource("models", "det@3.m-rk3588.rknn.small"))
		edge := e.edge(t, alice, e.hw)
		edge.Choose = func(arts []model.Artifact) (model.Artifact, string, error) {
			return catalog.Select(arts, []catalog.Target{{Backend: catalog.BackendONNX}})
		}
		if _, err := edge.Pull(ctx, "det", "3", nil); !errors.Is(err, container.ErrMismatch) {
			t.Fatalf("err = %v, want a mismatch", err)
		}
	})
	t.Run("bad index", func(t *testing.T) {
		idx, _ := json.Marshal(distribution.Bundle{Name: "det", Version: "4"})
		e.api.SetResource("models", "det@4.bundle", idx)
		edge := e.edge(t, alice, e.hw)
		edge.Choose = func(arts []model.Artifact) (model.Artifact, string, error) { return model.Artifact{}, "", nil }
		if _, err := edge.Pull(ctx, "det", "4", nil); err == nil || !strings.Contains(err.Error(), "no artifact") {
			t.Fatalf("err = %v", err)
		}
	})
}
