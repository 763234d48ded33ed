package api

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DetectOptions are the parameters of POST /v1/detect (all optional).
type DetectOptions struct {
	// Model is "name" or "name:version"; may be empty when one model is loaded.
	Model string
	// Conf is the minimum score (default 0.25).
	Conf float64
	// IoU is the NMS threshold (default 0.45).
	IoU float64
	// MaxDet caps detections per image (default 300).
	MaxDet int
	// Classes keeps only these class ids.
	Classes []int
}

// Query encodes the options as URL query parameters.
func (o DetectOptions) Query() url.Values {
	q := url.Values{}
	if o.Model != "" {
		q.Set("model", o.Model)
	}
	if o.Conf != 0 {
		q.Set("conf", strconv.FormatFloat(o.Conf, 'f', -1, 64))
	}
	if o.IoU != 0 {
		q.Set("iou", strconv.FormatFloat(o.IoU, 'f', -1, 64))
	}
	if o.MaxDet != 0 {
		q.Set("max_det", strconv.Itoa(o.MaxDet))
	}
	if len(o.Classes) > 0 {
		s := make([]string, len(o.Classes))
		for i, c := range o.Classes {
			s[i] = strconv.Itoa(c)
		}
		q.Set("classes", strings.Join(s, ","))
	}
	return q
}

// DetectResponse is the body of a successful POST /v1/detect.
type DetectResponse struct {
	Model      string      `json:"model"`
	Version    string      `json:"version,omitempty"`
	Backend    string      `json:"backend"`
	Device     string      `json:"device"`
	Image      ImageSize   `json:"image"`
	Detections []Detection `json:"detections"`
	TimingsMS  TimingsMS   `json:"timings_ms"`
	// BatchSize is the size of the batch the image ran in.
	BatchSize int `json:"batch_size,omitempty"`
}

// ImageSize is an image's size in pixels.
type ImageSize struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Detection is one detected object, its box in original-image pixels.
type Detection struct {
	ClassID int    `json:"class_id"`
	Label   string `json:"label"`
	// Weather is the weather mode of an Azaion class (Norm, Wint, Night);
	// empty for models with other class systems.
	Weather string  `json:"weather,omitempty"`
	Score   float64 `json:"score"`
	Box     Box     `json:"box"`
}

// Box is x1,y1 (top left) to x2,y2 (bottom right) in pixels.
type Box struct {
	X1 float64 `json:"x1"`
	Y1 float64 `json:"y1"`
	X2 float64 `json:"x2"`
	Y2 float64 `json:"y2"`
}

// TimingsMS are per-stage durations in milliseconds.
type TimingsMS struct {
	Queue       float64 `json:"queue"`
	Decode      float64 `json:"decode"`
	Preprocess  float64 `json:"preprocess"`
	Infer       float64 `json:"infer"`
	Postprocess float64 `json:"postprocess"`
	Total       float64 `json:"total"`
}

// MS converts a duration to milliseconds.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Detect sends one encoded image as the raw request body.
func (c *Client) Detect(ctx context.Context, image []byte, o DetectOptions) (*DetectResponse, error) {
	var out DetectResponse
	path := "/v1/detect"
	if q := o.Query().Encode(); q != "" {
		path += "?" + q
	}
	if err := c.Do(ctx, http.MethodPost, path, bytes.NewReader(image), "application/octet-stream", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DetectMultipart sends one image as the multipart field "image", with the
// options as form fields.
func (c *Client) DetectMultipart(ctx context.Context, filename string, image []byte, o DetectOptions) (*DetectResponse, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range o.Query() {
		_ = mw.WriteField(k, v[0])
	}
	fw, err := mw.CreateFormFile("image", filename)
	if err != nil {
		return nil, err
	}
	_, _ = fw.Write(image)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var out DetectResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/detect", &body, mw.FormDataContentType(), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
