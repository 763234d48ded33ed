package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/pluginconfig"
)

// TestPluginConfigRoundTrip: for each plugin kind, what the daemon reads
// from its YAML (and environment) is exactly what the plugin decodes from
// the environment entry the daemon hands it.
func TestPluginConfigRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "azaion.yaml")
	yaml := `
onnx:
  library: /opt/ort/libonnxruntime.so.1
  intra_op_threads: 3
  inter_op_threads: 2
  spinning: true
  max_batch: 8
  batch_wait: 7ms
  decode_threads: 3
  decode_priority: low
  concurrent_batches: 3
  providers: [cuda, cpu]
  fallback_cpu: true
trainer:
  enabled: true
  python: /opt/azaion/venv/bin/python3
`
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZAION_ONNX_THREADS", "4")
	for _, k := range []string{"AZAION_ORT_LIB", "AZAION_TRAINER_PYTHON"} {
		t.Setenv(k, "") // `make test` exports them; restored after the test
		os.Unsetenv(k)
	}
	c, err := Load(p, true)
	if err != nil {
		t.Fatal(err)
	}
	want := pluginconfig.ONNX{Library: "/opt/ort/libonnxruntime.so.1", IntraOpThreads: 4, InterOpThreads: 2, Spinning: true,
		MaxBatch: 8, BatchWait: 7 * time.Millisecond, DecodeThreads: 3, DecodePriority: "low", ConcurrentBatches: 3, Providers: []string{"cuda", "cpu"}, FallbackCPU: true}
	if !reflect.DeepEqual(c.ONNX.ONNX, want) {
		t.Fatalf("onnx section: %+v, want %+v", c.ONNX.ONNX, want)
	}
	for _, tc := range []struct {
		name     string
		sent     pluginconfig.Config
		received pluginconfig.Config
	}{
		{"onnx", &c.ONNX.ONNX, ptr(pluginconfig.DefaultONNX())},
		{"trainer", &c.Trainer.Trainer, ptr(pluginconfig.DefaultTrainer())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entry, err := pluginconfig.Encode(tc.sent)
			if err != nil {
				t.Fatal(err)
			}
			k, v, _ := strings.Cut(entry, "=")
			t.Setenv(k, v) // as the plugin's environment has it
			if err := pluginconfig.Decode(tc.received); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.sent, tc.received) {
				t.Errorf("daemon sent %+v, plugin got %+v", tc.sent, tc.received)
			}
		})
	}
	if c.Trainer.Python != "/opt/azaion/venv/bin/python3" {
		t.Errorf("trainer.python: %q", c.Trainer.Python)
	}
}

func ptr[T any](v T) *T { return &v }
