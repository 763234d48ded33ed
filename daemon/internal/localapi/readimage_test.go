package localapi

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/azaion/edge/sdk/shmem"
)

// TestReadImage: the image is read once into a buffer sized from the
// request (its capacity is the body's length + 1 when Content-Length is
// known: it never grew), from a raw body, a chunked one or a multipart
// form whose other fields stay readable.
func TestReadImage(t *testing.T) {
	img := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB
	read := func(req *http.Request, limit int64) ([]byte, error) {
		return readImage(httptest.NewRecorder(), req, limit, 0, nil)
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

// TestReadImageShared: with a pool of shared image memory, a raw body of
// known length is read into a slot of it; a chunked or multipart body, or
// one that finds the pool full, goes to the heap; a short body frees its
// slot.
func TestReadImageShared(t *testing.T) {
	region, err := shmem.Create(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer region.Close()
	pool := shmem.NewPool(region)
	img := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB
	read := func(req *http.Request) ([]byte, error) {
		return readImage(httptest.NewRecorder(), req, 1<<21, 0, pool)
	}
	raw := func() *http.Request {
		req := httptest.NewRequest("POST", "/v1/detect", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/jpeg")
		return req
	}
	b, err := read(raw())
	if err != nil || !bytes.Equal(b, img) {
		t.Fatalf("raw body: %d bytes, %v", len(b), err)
	}
	if _, ok := region.Offset(b); !ok {
		t.Fatal("a raw body of known length was not read into the shared region")
	}
	// The pool (1 MiB) has no room for a second 640 KB body: the heap.
	b2, err := read(raw())
	if err != nil || !bytes.Equal(b2, img) {
		t.Fatalf("second raw body: %d bytes, %v", len(b2), err)
	}
	if _, ok := region.Offset(b2); ok || pool.Full.Load() != 1 {
		t.Fatalf("a body that does not fit went to the region (full count %d)", pool.Full.Load())
	}
	pool.Free(b)
	chunked := raw()
	chunked.Body = io.NopCloser(io.MultiReader(bytes.NewReader(img[:1000]), bytes.NewReader(img[1000:])))
	chunked.ContentLength = -1
	if b, err := read(chunked); err != nil || !bytes.Equal(b, img) {
		t.Fatalf("chunked: %v", err)
	} else if _, ok := region.Offset(b); ok {
		t.Fatal("a chunked body went to the region")
	}
	short := raw()
	short.ContentLength = int64(len(img) + 10)
	if _, err := read(short); !errors.Is(err, errBadRequest) {
		t.Fatalf("short body: %v, want a bad request", err)
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d bytes still in use after a short body", pool.InUse())
	}
}
