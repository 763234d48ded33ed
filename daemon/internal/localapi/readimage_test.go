package localapi

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReadImage: the image is read once into a buffer sized from the
// request (its capacity is the body's length + 1 when Content-Length is
// known: it never grew), from a raw body, a chunked one or a multipart
// form whose other fields stay readable.
func TestReadImage(t *testing.T) {
	img := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB
	read := func(req *http.Request, limit int64) ([]byte, error) {
		return readImage(httptest.NewRecorder(), req, limit, 0)
	}
	t.Run("raw body", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/v1/detect", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/jpeg")
		b, err := read(req, 1<<20)
		if err != nil || !bytes.Equal(b, img) {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
		if cap(b) != len(img)+1 {
			t.Errorf("buffer capacity %d for a %d-byte body: it grew", cap(b), len(img))
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/v1/detect", io.MultiReader(bytes.NewReader(img[:1000]), bytes.NewReader(img[1000:])))
		req.ContentLength = -1
		b, err := read(req, 1<<20)
		if err != nil || !bytes.Equal(b, img) {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/v1/detect", bytes.NewReader(img))
		var mbe *http.MaxBytesError
		if _, err := read(req, 1000); !errors.As(err, &mbe) {
			t.Fatalf("%v, want a MaxBytesError", err)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("model", " yolo ")
		fw, _ := mw.CreateFormFile("image", "a.jpg")
		fw.Write(img)
		fw, _ = mw.CreateFormFile("image", "second.jpg") // ignored: the first one counts
		fw.Write([]byte("second"))
		mw.WriteField("conf", "0.4")
		mw.Close()
		size := body.Len()
		req := httptest.NewRequest("POST", "/v1/detect?iou=0.3", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		b, err := read(req, 1<<21)
		if err != nil || !bytes.Equal(b, img) {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
		if m, c, i := queryOrForm(req, "model"), queryOrForm(req, "conf"), queryOrForm(req, "iou"); m != "yolo" || c != "0.4" || i != "0.3" {
			t.Errorf("fields model=%q conf=%q iou=%q", m, c, i)
		}
		if cap(b) > size+1 {
			t.Errorf("buffer capacity %d for a %d-byte body: it grew", cap(b), size)
		}
	})
}
