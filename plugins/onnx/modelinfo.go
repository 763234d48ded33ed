package onnx

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/model"
)

// modelShape is what the ONNX graph says about a detector's input and output.
type modelShape struct {
	inName, outName string
	// batch is the input batch dimension (<= 0 when dynamic).
	batch int64
	// h, w are the input height and width (<= 0 when dynamic).
	h, w int64
	// out is the output shape (batch dimension included).
	out []int64
	// in16, out16 are true for a float16 input or output (an Ultralytics
	// half=True export); the plugin converts at the boundary.
	in16, out16 bool
}

// inspectShape reads the input and output of a detector graph: one float32
// or float16 NCHW input with 3 channels and a rank-3 float32 or float16
// output (the first output; a float16 one needs static non-batch dimensions).
func inspectShape(ins, outs []ort.InputOutputInfo) (modelShape, error) {
	bad := func(format string, args ...any) (modelShape, error) {
		return modelShape{}, fmt.Errorf("onnx: %s: %w", fmt.Sprintf(format, args...), backend.ErrBadModel)
	}
	if len(ins) != 1 {
		return bad("the model has %d inputs, want 1 image input", len(ins))
	}
	if len(outs) < 1 {
		return bad("the model has no outputs")
	}
	in, out := ins[0], outs[0]
	if in.OrtValueType != ort.ONNXTypeTensor || !isFloat(in.DataType) {
		return bad("input %q is %s, want a float32 or float16 tensor", in.Name, in.String())
	}
	d := in.Dimensions
	if len(d) != 4 {
		return bad("input %q has shape %v, want NCHW [batch,3,height,width]", in.Name, d)
	}
	if d[1] != 3 {
		if d[3] == 3 {
			return modelShape{}, fmt.Errorf("onnx: input %q has shape %v: NHWC inputs are not supported, export the model as NCHW: %w", in.Name, d, backend.ErrUnsupported)
		}
		return bad("input %q has shape %v, want 3 channels in NCHW [batch,3,height,width]", in.Name, d)
	}
	if out.OrtValueType != ort.ONNXTypeTensor || !isFloat(out.DataType) {
		return bad("output %q is %s, want a float32 or float16 tensor", out.Name, out.String())
	}
	if len(out.Dimensions) != 3 {
		return bad("output %q has shape %v, want yolo-raw [batch,4+classes,anchors] or yolo-nms [batch,detections,6]", out.Name, out.Dimensions)
	}
	sh := modelShape{
		inName: in.Name, outName: out.Name,
		batch: d[0], h: d[2], w: d[3],
		out:  append([]int64(nil), out.Dimensions...),
		in16: in.DataType == ort.TensorElementDataTypeFloat16, out16: out.DataType == ort.TensorElementDataTypeFloat16,
	}
	if sh.out16 && (sh.out[1] <= 0 || sh.out[2] <= 0) {
		return modelShape{}, fmt.Errorf("onnx: output %q is float16 with dynamic dimensions %v: export it with a static output shape: %w", out.Name, out.Dimensions, backend.ErrUnsupported)
	}
	return sh, nil
}

// outputLayout infers the output layout from the output shape.
func outputLayout(out []int64) (string, error) {
	a, b := out[1], out[2]
	switch {
	case b == 6 && a != 6:
		return model.OutputYOLONMS, nil
	case a >= 5 && (b > a || b <= 0):
		return model.OutputYOLORaw, nil
	}
	return "", fmt.Errorf("onnx: output shape %v is neither yolo-raw [batch,4+classes,anchors] (anchors > 4+classes) nor yolo-nms [batch,detections,6]; set output in the model's descriptor: %w", out, backend.ErrBadModel)
}

// metadata is the Ultralytics metadata of an exported model.
type metadata struct {
	names []string
	imgsz []int // [h, w]
	batch int
}

// readMetadata reads the Ultralytics custom metadata keys names, imgsz and batch.
func readMetadata(md *ort.ModelMetadata) (metadata, error) {
	var m metadata
	get := func(k string) (string, bool, error) { return md.LookupCustomMetadataMap(k) }
	if s, ok, err := get("names"); err != nil {
		return m, err
	} else if ok {
		names, err := parseNames(s)
		if err != nil {
			return m, fmt.Errorf("metadata names: %w", err)
		}
		m.names = names
	}
	if s, ok, err := get("imgsz"); err != nil {
		return m, err
	} else if ok {
		v, err := parseInts(s)
		if err != nil {
			return m, fmt.Errorf("metadata imgsz: %w", err)
		}
		switch len(v) {
		case 1:
			m.imgsz = []int{v[0], v[0]}
		case 2:
			m.imgsz = v
		default:
			return m, fmt.Errorf("metadata imgsz %q: want [h, w]", s)
		}
	}
	if s, ok, err := get("batch"); err != nil {
		return m, err
	} else if ok {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return m, fmt.Errorf("metadata batch %q: %w", s, err)
		}
		m.batch = v
	}
	return m, nil
}

// parseInts parses "[640, 640]", "(640, 640)" or "640".
func parseInts(s string) ([]int, error) {
	s = strings.Trim(strings.TrimSpace(s), "[]()")
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: no numbers", s)
	}
	return out, nil
}

// parseNames parses Ultralytics' class names: a Python dict literal
// {0: 'person', 1: "it's"}, a JSON object {"0": "person"} or a list
// ['person', 'bicycle']. Ids missing from a dict get the name "class<N>".
func parseNames(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	var list []string
	if json.Unmarshal([]byte(s), &list) == nil {
		return list, nil
	}
	var obj map[string]string
	if json.Unmarshal([]byte(s), &obj) == nil {
		byID := map[int]string{}
		for k, v := range obj {
			id, err := strconv.Atoi(k)
			if err != nil {
				return nil, fmt.Errorf("class id %q is not a number", k)
			}
			byID[id] = v
		}
		return namesByID(byID)
	}
	p := &pyParser{s: s}
	return p.parse()
}

// namesByID turns {id: name} into a slice indexed by id.
func namesByID(byID map[int]string) ([]string, error) {
	n := 0
	for id := range byID {
		if id < 0 || id > 100000 {
			return nil, fmt.Errorf("class id %d out of range", id)
		}
		n = max(n, id+1)
	}
	names := make([]string, n)
	for i := range names {
		if v, ok := byID[i]; ok {
			names[i] = v
		} else {
			names[i] = "class" + strconv.Itoa(i)
		}
	}
	return names, nil
}

// pyParser parses a Python dict or list literal of int keys and str values.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("names at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *pyParser) skipSpace() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	p.skipSpace()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) parse() ([]string, error) {
	open := p.peek()
	var closer byte
	switch open {
	case '{':
		closer = '}'
	case '[':
		closer = ']'
	default:
		return nil, p.errorf("want a dict {0: 'name', ...} or a list ['name', ...]")
	}
	p.i++
	byID := map[int]string{}
	for n := 0; ; n++ {
		if p.peek() == closer {
			p.i++
			break
		}
		id := n
		if open == '{' {
			start := p.i
			for p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
				p.i++
			}
			v, err := strconv.Atoi(p.s[start:p.i])
			if err != nil {
				return nil, p.errorf("want an integer class id")
			}
			id = v
			if p.peek() != ':' {
				return nil, p.errorf("want ':'")
			}
			p.i++
		}
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		byID[id] = name
		switch p.peek() {
		case ',':
			p.i++
		case closer:
		default:
			return nil, p.errorf("want ',' or %q", closer)
		}
	}
	if p.peek() != 0 {
		return nil, p.errorf("unexpected text after the names")
	}
	return namesByID(byID)
}

// str parses a single- or double-quoted Python string with backslash escapes.
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("want a quoted name")
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case q:
			return b.String(), nil
		case '\\':
			if p.i >= len(p.s) {
				return "", p.errorf("unterminated escape")
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'x':
				if p.i+2 > len(p.s) {
					return "", p.errorf("bad \\x escape")
				}
				v, err := strconv.ParseUint(p.s[p.i:p.i+2], 16, 8)
				if err != nil {
					return "", p.errorf("bad \\x escape")
				}
				b.WriteRune(rune(v))
				p.i += 2
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated string")
}

// resolve fills the zero fields of d from the graph shape and the metadata.
// Values given in d (a sidecar) win, but may not contradict the graph.
func resolve(d model.Descriptor, sh modelShape, md metadata, maxBatch int) (model.Descriptor, int, error) {
	bad := func(format string, args ...any) (model.Descriptor, int, error) {
		return d, 0, fmt.Errorf("onnx: %s: %w", fmt.Sprintf(format, args...), backend.ErrBadModel)
	}
	if d.Format == "" {
		d.Format = model.FormatONNX
	}
	if d.Format != model.FormatONNX {
		return d, 0, fmt.Errorf("onnx: format %q: this backend loads onnx models: %w", d.Format, backend.ErrUnsupported)
	}
	if strings.EqualFold(d.Layout, "NHWC") {
		return d, 0, fmt.Errorf("onnx: layout NHWC is not supported: %w", backend.ErrUnsupported)
	}
	d.Layout = "NCHW"
	if d.DType == "" {
		d.DType = "float32"
	}
	if d.PixelFormat == "" {
		d.PixelFormat = "RGB"
	}
	d.PixelFormat = strings.ToUpper(d.PixelFormat)
	// Input size: graph, else descriptor, else metadata.
	for _, f := range []struct {
		name  string
		graph int64
		field *int
		meta  int
	}{{"height", sh.h, &d.InputHeight, 0}, {"width", sh.w, &d.InputWidth, 1}} {
		switch {
		case f.graph > 0 && *f.field != 0 && int64(*f.field) != f.graph:
			return bad("descriptor input %s %d contradicts the model's %d", f.name, *f.field, f.graph)
		case f.graph > 0:
			*f.field = int(f.graph)
		case *f.field == 0 && len(md.imgsz) == 2:
			*f.field = md.imgsz[f.meta]
		case *f.field == 0:
			return bad("input %s is dynamic and neither the descriptor nor the metadata (imgsz) gives it", f.name)
		}
	}
	if d.InputWidth%32 != 0 || d.InputHeight%32 != 0 || d.InputWidth > 8192 || d.InputHeight > 8192 {
		return bad("input size %dx%d: want multiples of 32 up to 8192", d.InputWidth, d.InputHeight)
	}
	// Batch: a fixed graph dimension is the batch; a dynamic one is batched
	// up to maxBatch (or the descriptor's batch, when it sets one).
	run := 0
	if sh.batch > 0 {
		if d.Batch != 0 && int64(d.Batch) != sh.batch {
			return bad("descriptor batch %d contradicts the model's fixed batch %d", d.Batch, sh.batch)
		}
		d.Batch, d.DynamicBatch = int(sh.batch), false
		run = d.Batch
	} else {
		d.DynamicBatch = true
		run = maxBatch
		if d.Batch > 0 {
			run = d.Batch
		}
		d.Batch = 0
	}
	if d.Output == "" {
		o, err := outputLayout(sh.out)
		if err != nil {
			return d, 0, err
		}
		d.Output = o
	}
	switch d.Output {
	case model.OutputYOLORaw:
		if sh.out[1] < 5 {
			return bad("output shape %v: yolo-raw needs [batch,4+classes,anchors]", sh.out)
		}
	case model.OutputYOLONMS:
		if sh.out[2] != 6 {
			return bad("output shape %v: yolo-nms needs [batch,detections,6]", sh.out)
		}
	}
	if len(d.Classes) == 0 {
		d.Classes = md.names
	}
	if d.Output == model.OutputYOLORaw && sh.out[1] > 0 && len(d.Classes) > 0 && int64(len(d.Classes)) != sh.out[1]-4 {
		return bad("%d class names for %d classes in the output %v", len(d.Classes), sh.out[1]-4, sh.out)
	}
	if err := d.Validate(); err != nil {
		return d, 0, fmt.Errorf("onnx: %w: %w", err, backend.ErrBadModel)
	}
	return d, run, nil
}

func isFloat(t ort.TensorElementDataType) bool {
	return t == ort.TensorElementDataTypeFloat || t == ort.TensorElementDataTypeFloat16
}
