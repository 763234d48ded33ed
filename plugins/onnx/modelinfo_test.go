package onnx

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

func TestParseNames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"python dict", "{0: 'person', 1: 'bicycle', 2: 'car'}", []string{"person", "bicycle", "car"}, false},
		{"double quotes and apostrophe", `{0: "it's", 1: 'a, b: c'}`, []string{"it's", "a, b: c"}, false},
		{"escapes", `{0: 'it\'s', 1: 'tab\there', 2: '\x41'}`, []string{"it's", "tab\there", "A"}, false},
		{"unordered with a gap", "{2: 'c', 0: 'a'}", []string{"a", "class1", "c"}, false},
		{"trailing comma and spaces", " { 0 : 'a' ,\n 1: 'b', } ", []string{"a", "b"}, false},
		{"python list", "['a', 'b']", []string{"a", "b"}, false},
		{"json object", `{"0": "a", "1": "b"}`, []string{"a", "b"}, false},
		{"json list", `["a", "b"]`, []string{"a", "b"}, false},
		{"empty dict", "{}", []string{}, false},
		{"azaion classes", "{0: 'ArmorVehicle', 20: 'ArmorVehicle(Wint)'}", nil, false},
		{"unterminated", "{0: 'a", nil, true},
		{"not a literal", "person,car", nil, true},
		{"bad key", "{a: 'x'}", nil, true},
		{"missing colon", "{0 'x'}", nil, true},
		{"trailing junk", "{0: 'x'} y", nil, true},
		{"negative id", "{-1: 'x'}", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNames(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if tc.name == "azaion classes" {
				if len(got) != 21 || got[20] != "ArmorVehicle(Wint)" {
					t.Errorf("got %d names, [20] = %q", len(got), got[len(got)-1])
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseInts(t *testing.T) {
	for in, want := range map[string][]int{"[640, 640]": {640, 640}, "(320,480)": {320, 480}, "1280": {1280}} {
		got, err := parseInts(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseInts(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "[a]", "[]"} {
		if _, err := parseInts(in); err == nil {
			t.Errorf("parseInts(%q): want an error", in)
		}
	}
}

func tensorInfo(name string, dims ...int64) ort.InputOutputInfo {
	return ort.InputOutputInfo{Name: name, OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeFloat, Dimensions: dims}
}

func TestInspectShape(t *testing.T) {
	img := tensorInfo("images", 1, 3, 640, 640)
	raw := tensorInfo("output0", 1, 84, 8400)
	tests := []struct {
		name      string
		ins, outs []ort.InputOutputInfo
		want      error
		msg       string
	}{
		{"ok", []ort.InputOutputInfo{img}, []ort.InputOutputInfo{raw}, nil, ""},
		{"two inputs", []ort.InputOutputInfo{img, img}, []ort.InputOutputInfo{raw}, backend.ErrBadModel, "2 inputs"},
		{"no outputs", []ort.InputOutputInfo{img}, nil, backend.ErrBadModel, "no outputs"},
		{"nhwc", []ort.InputOutputInfo{tensorInfo("images", 1, 640, 640, 3)}, []ort.InputOutputInfo{raw}, backend.ErrUnsupported, "NHWC"},
		{"grey", []ort.InputOutputInfo{tensorInfo("images", 1, 1, 640, 640)}, []ort.InputOutputInfo{raw}, backend.ErrBadModel, "3 channels"},
		{"rank 2 input", []ort.InputOutputInfo{tensorInfo("x", 1, 10)}, []ort.InputOutputInfo{raw}, backend.ErrBadModel, "NCHW"},
		{"fp16 input", []ort.InputOutputInfo{{Name: "images", OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeFloat16, Dimensions: ort.NewShape(1, 3, 640, 640)}}, []ort.InputOutputInfo{raw}, nil, ""},
		{"uint8 input", []ort.InputOutputInfo{{Name: "images", OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeUint8, Dimensions: ort.NewShape(1, 3, 640, 640)}}, []ort.InputOutputInfo{raw}, backend.ErrBadModel, "float32 or float16"},
		{"fp16 output with dynamic anchors", []ort.InputOutputInfo{img}, []ort.InputOutputInfo{{Name: "output0", OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataTypeFloat16, Dimensions: ort.NewShape(1, 84, -1)}}, backend.ErrUnsupported, "static"},
		{"rank 4 output (segmentation protos)", []ort.InputOutputInfo{img}, []ort.InputOutputInfo{tensorInfo("p", 1, 32, 160, 160)}, backend.ErrBadModel, "yolo-raw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inspectShape(tc.ins, tc.outs)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestOutputLayout(t *testing.T) {
	tests := []struct {
		out  []int64
		want string
	}{
		{[]int64{1, 84, 8400}, model.OutputYOLORaw},
		{[]int64{-1, 84, 33600}, model.OutputYOLORaw},
		{[]int64{1, 6, 8400}, model.OutputYOLORaw}, // 2 classes
		{[]int64{1, 300, 6}, model.OutputYOLONMS},
		{[]int64{-1, -1, 6}, model.OutputYOLONMS},
		{[]int64{1, 84, -1}, model.OutputYOLORaw},
		{[]int64{1, 8400, 84}, ""}, // transposed
		{[]int64{1, 4, 100}, ""},
		{[]int64{1, 6, 6}, ""},
	}
	for _, tc := range tests {
		got, err := outputLayout(tc.out)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("outputLayout(%v) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
		if err != nil && (!errors.Is(err, backend.ErrBadModel) || !strings.Contains(err.Error(), "neither yolo-raw")) {
			t.Errorf("outputLayout(%v) error %v does not explain", tc.out, err)
		}
	}
}

func TestResolve(t *testing.T) {
	fixed := modelShape{inName: "images", outName: "output0", batch: 1, h: 640, w: 640, out: []int64{1, 84, 8400}}
	dynamic := modelShape{inName: "images", outName: "output0", batch: -1, h: 640, w: 640, out: []int64{-1, 84, 8400}}
	dynSize := modelShape{inName: "images", outName: "output0", batch: -1, h: -1, w: -1, out: []int64{-1, 84, -1}}
	names := make([]string, 80)
	for i := range names {
		names[i] = "c"
	}
	md := metadata{names: names, imgsz: []int{480, 640}, batch: 1}
	tests := []struct {
		name     string
		desc     model.Descriptor
		sh       modelShape
		md       metadata
		want     func(model.Descriptor) bool
		runBatch int
		err      error
	}{
		{"fixed from graph", model.Descriptor{Name: "m"}, fixed, md, func(d model.Descriptor) bool {
			return d.InputWidth == 640 && d.Batch == 1 && !d.DynamicBatch && d.Output == model.OutputYOLORaw && len(d.Classes) == 80 && d.Format == "onnx" && d.Layout == "NCHW" && d.PixelFormat == "RGB"
		}, 1, nil},
		{"dynamic batch uses max batch", model.Descriptor{Name: "m"}, dynamic, md, func(d model.Descriptor) bool { return d.Batch == 0 && d.DynamicBatch }, 4, nil},
		{"sidecar batch caps a dynamic batch", model.Descriptor{Name: "m", Batch: 2}, dynamic, md, func(d model.Descriptor) bool { return d.DynamicBatch }, 2, nil},
		{"dynamic size from metadata imgsz", model.Descriptor{Name: "m"}, dynSize, md, func(d model.Descriptor) bool { return d.InputHeight == 480 && d.InputWidth == 640 }, 4, nil},
		{"dynamic size from sidecar", model.Descriptor{Name: "m", InputWidth: 320, InputHeight: 320}, dynSize, md, func(d model.Descriptor) bool { return d.InputWidth == 320 }, 4, nil},
		{"dynamic size unknown", model.Descriptor{Name: "m"}, dynSize, metadata{}, nil, 0, backend.ErrBadModel},
		{"sidecar classes win", model.Descriptor{Name: "m", Classes: names[:80]}, fixed, metadata{}, func(d model.Descriptor) bool { return len(d.Classes) == 80 }, 1, nil},
		{"sidecar output wins", model.Descriptor{Name: "m", Output: model.OutputYOLORaw}, modelShape{batch: 1, h: 640, w: 640, out: []int64{1, 6, 6}}, metadata{}, func(d model.Descriptor) bool { return d.Output == model.OutputYOLORaw }, 1, nil},
		{"sidecar BGR", model.Descriptor{Name: "m", PixelFormat: "bgr"}, fixed, md, func(d model.Descriptor) bool { return d.PixelFormat == "BGR" }, 1, nil},
		{"batch contradicts", model.Descriptor{Name: "m", Batch: 4}, fixed, md, nil, 0, backend.ErrBadModel},
		{"size contradicts", model.Descriptor{Name: "m", InputWidth: 320}, fixed, md, nil, 0, backend.ErrBadModel},
		{"class count mismatch", model.Descriptor{Name: "m", Classes: []string{"a", "b"}}, fixed, md, nil, 0, backend.ErrBadModel},
		{"nms needs 6 columns", model.Descriptor{Name: "m", Output: model.OutputYOLONMS}, fixed, md, nil, 0, backend.ErrBadModel},
		{"engine format", model.Descriptor{Name: "m", Format: model.FormatEngine}, fixed, md, nil, 0, backend.ErrUnsupported},
		{"nhwc layout", model.Descriptor{Name: "m", Layout: "nhwc"}, fixed, md, nil, 0, backend.ErrUnsupported},
		{"bad name", model.Descriptor{Name: "a/b"}, fixed, md, nil, 0, backend.ErrBadModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, run, err := resolve(tc.desc, tc.sh, tc.md, 4)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(d) || run != tc.runBatch {
				t.Errorf("got %+v run batch %d, want run batch %d", d, run, tc.runBatch)
			}
		})
	}
}
