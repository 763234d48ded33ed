package onnx

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		json string
		lib  string
		want func(Config) bool
		err  string
	}{
		{"defaults", "", "", func(c Config) bool {
			return c.IntraOpThreads >= 1 && c.IntraOpThreads <= 2 && c.InterOpThreads == 1 && !c.Spinning && c.MaxBatch == 4 &&
				time.Duration(c.BatchWait) == 2*time.Millisecond && len(c.Providers) == 1 && c.Providers[0] == "cpu" &&
				strings.HasSuffix(c.Library, "onnxruntime-1.30.0/libonnxruntime.so.1")
		}, ""},
		{"env library", "", "/opt/ort/libonnxruntime.so", func(c Config) bool { return c.Library == "/opt/ort/libonnxruntime.so" }, ""},
		{"json wins over env library", `{"library": "/x.so"}`, "/opt/ort/libonnxruntime.so", func(c Config) bool { return c.Library == "/x.so" }, ""},
		{"all fields", `{"intra_op_threads": 3, "inter_op_threads": 2, "spinning": true, "max_batch": 8, "batch_wait": "5ms", "providers": ["CUDA", "cpu"], "fallback_cpu": true}`, "", func(c Config) bool {
			return c.IntraOpThreads == 3 && c.InterOpThreads == 2 && c.Spinning && c.MaxBatch == 8 && time.Duration(c.BatchWait) == 5*time.Millisecond &&
				c.Providers[0] == "cuda" && c.FallbackCPU
		}, ""},
		{"bad json", `{"max_batch": "four"}`, "", nil, "AZAION_PLUGIN_CONFIG"},
		{"unknown field", `{"maxbatch": 4}`, "", nil, "maxbatch"},
		{"bad duration", `{"batch_wait": "soon"}`, "", nil, "soon"},
		{"bad provider", `{"providers": ["rocm"]}`, "", nil, "rocm"},
		{"negative threads", `{"intra_op_threads": -1}`, "", nil, "intra_op_threads"},
		{"wait too long", `{"batch_wait": "5s"}`, "", nil, "batch_wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvConfig, tc.json)
			t.Setenv(EnvLibrary, tc.lib)
			c, err := ConfigFromEnv()
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
