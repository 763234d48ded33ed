package pluginconfig

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeONNX(t *testing.T) {
	tests := []struct {
		name string
		json string
		want func(ONNX) bool
		err  string
	}{
		{"defaults", "", func(c ONNX) bool {
			c = c.WithDefaults()
			return c.IntraOpThreads >= 1 && c.IntraOpThreads <= 2 && c.InterOpThreads == 1 && !c.Spinning && c.MaxBatch == 4 &&
				c.BatchWait == 2*time.Millisecond && len(c.Providers) == 1 && c.Providers[0] == "cpu" && c.Library == DefaultORTLibrary
		}, ""},
		{"library", `{"library": "/x.so"}`, func(c ONNX) bool { return c.Library == "/x.so" && c.MaxBatch == 4 }, ""},
		{"all fields", `{"intra_op_threads": 3, "inter_op_threads": 2, "spinning": true, "max_batch": 8, "batch_wait": 5000000, "decode_threads": 5, "decode_priority": "low", "concurrent_batches": 3, "providers": ["CUDA", "cpu"], "fallback_cpu": true}`, func(c ONNX) bool {
			c = c.WithDefaults()
			return c.IntraOpThreads == 3 && c.InterOpThreads == 2 && c.Spinning && c.MaxBatch == 8 && c.BatchWait == 5*time.Millisecond &&
				c.DecodeThreads == 5 && c.DecodePriority == DecodePriorityLow && c.ConcurrentBatches == 3 && c.Providers[0] == "cuda" && c.FallbackCPU
		}, ""},
		{"too many decoders", `{"decode_threads": 1000}`, nil, "decode_threads"},
		{"bad decode priority", `{"decode_priority": "high"}`, nil, "decode_priority"},
		{"too many concurrent batches", `{"concurrent_batches": 17}`, nil, "concurrent_batches"},
		{"one thread, one batch at a time", `{"intra_op_threads": 1}`, func(c ONNX) bool { return c.WithDefaults().ConcurrentBatches == 1 }, ""},
		{"two threads, two batches", `{"intra_op_threads": 2}`, func(c ONNX) bool { return c.WithDefaults().ConcurrentBatches == 2 }, ""},
		{"bad json", `{"max_batch": "four"}`, nil, Env},
		{"unknown field", `{"maxbatch": 4}`, nil, "maxbatch"},
		{"bad duration", `{"batch_wait": "soon"}`, nil, "batch_wait"},
		{"bad provider", `{"providers": ["rocm"]}`, nil, "rocm"},
		{"negative threads", `{"intra_op_threads": -1}`, nil, "intra_op_threads"},
		{"wait too long", `{"batch_wait": 5000000000}`, nil, "batch_wait"},
		{"batch out of range", `{"max_batch": 0}`, nil, "max_batch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(Env, tc.json)
			c := DefaultONNX()
			err := Decode(&c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

// TestEncodeDecode: what the daemon encodes is exactly what a plugin decodes,
// for every plugin kind.
func TestEncodeDecode(t *testing.T) {
	onnx := ONNX{Library: "/opt/ort/libonnxruntime.so.1", IntraOpThreads: 3, InterOpThreads: 2, Spinning: true,
		MaxBatch: 8, BatchWait: 7 * time.Millisecond, DecodeThreads: 3, DecodePriority: DecodePriorityLow, ConcurrentBatches: 3, Providers: []string{"cuda", "cpu"}, FallbackCPU: true}
	trainer := Trainer{Python: "/opt/venv/bin/python3"}
	for _, tc := range []struct {
		name     string
		in, into Config
	}{
		{"onnx", &onnx, &ONNX{}},
		{"trainer", &trainer, &Trainer{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			k, v, _ := strings.Cut(env, "=")
			if k != Env {
				t.Fatalf("entry %q: want %s=...", env, Env)
			}
			if err := DecodeString(v, tc.into); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.in, tc.into) {
				t.Errorf("round trip: sent %+v, got %+v", tc.in, tc.into)
			}
		})
	}
}

func TestDefaultDecodeThreads(t *testing.T) {
	for _, tc := range []struct{ cpus, rt, want int }{
		{1, 1, 1}, {2, 2, 1}, {4, 2, 2}, {8, 2, 6}, {16, 4, 8}, {64, 8, 8},
	} {
		if got := DefaultDecodeThreads(tc.cpus, tc.rt); got != tc.want {
			t.Errorf("%d CPUs, %d runtime threads: %d, want %d", tc.cpus, tc.rt, got, tc.want)
		}
	}
	if c := (ONNX{IntraOpThreads: 2}).WithDefaults(); c.DecodeThreads < 1 || c.DecodeThreads > MaxDefaultDecodeThreads || c.DecodePriority != DecodePriorityNormal {
		t.Errorf("default decode threads %d, priority %q", c.DecodeThreads, c.DecodePriority)
	}
}

func TestTrainerValidate(t *testing.T) {
	c := DefaultTrainer()
	t.Setenv(Env, `{"python": "venv/bin/python"}`)
	if err := Decode(&c); err == nil || !strings.Contains(err.Error(), "python") {
		t.Errorf("relative python: err = %v", err)
	}
	os.Unsetenv(Env)
}
