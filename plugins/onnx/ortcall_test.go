package onnx

import (
	"math"
	"os"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/plugins/internal/imaging/imagingtest"
)

// TestRunThread: a run on a lane's thread (ortcall.go, which reaches into
// onnxruntime_go's session and values) gives the same output as the
// session's own Run, reports the runtime's error for a bad input as Run
// does, and runs again after an error.
func TestRunThread(t *testing.T) {
	newBackend(t, Config{}) // loads the runtime
	data, err := os.ReadFile(testenv.Model(t, "yolo11n_dequant_fp32.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := inspectShape(ins, outs)
	if err != nil {
		t.Fatal(err)
	}
	opts, _, err := sessionOptions(Config{}.WithDefaults(), map[string]error{})
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{sh.inName}, []string{sh.outName}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()

	in, err := ort.NewTensor(ort.NewShape(1, 3, 640, 640), imagingtest.ReadF32(t, testenv.Model(t, "images/bus.jpg.640.f32")))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outShape := ort.NewShape(1, sh.out[1], sh.out[2])
	want, err := ort.NewEmptyTensor[float32](outShape)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Destroy()
	got, err := ort.NewEmptyTensor[float32](outShape)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Destroy()
	if err := sess.Run([]ort.Value{in}, []ort.Value{want}); err != nil {
		t.Fatal(err)
	}

	rt, err := newRunThread(sess, sh.inName, sh.outName)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		clear(got.GetData())
		if err := rt.run(in, got); err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i, v := range got.GetData() {
			worst = max(worst, math.Abs(float64(v-want.GetData()[i])))
		}
		if worst > 1e-4 {
			t.Fatalf("output on the run thread differs from Run's by up to %g", worst)
		}
	}

	bad, err := ort.NewTensor(ort.NewShape(1, 3, 10, 10), make([]float32, 300))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Destroy()
	runErr := sess.Run([]ort.Value{bad}, []ort.Value{want})
	threadErr := rt.run(bad, got)
	if runErr == nil || threadErr == nil {
		t.Fatalf("a 10x10 input: Run err = %v, run thread err = %v; want errors", runErr, threadErr)
	}
	if !strings.HasPrefix(threadErr.Error(), "Error running network: ") || !strings.Contains(runErr.Error(), strings.TrimPrefix(threadErr.Error(), "Error running network: ")) {
		t.Errorf("run thread error %q does not carry the runtime's message (Run: %q)", threadErr, runErr)
	}
	// The thread runs again after an error.
	if err := rt.run(in, got); err != nil {
		t.Fatal(err)
	}
	rt.close()
}
