// Package cdn is the daemon's client of the S3-compatible CDN that holds the
// big parts of models. It is imported only by the daemon.
//
// Reading and writing use separate credentials and separate types: a Reader
// (edge machines, read-only key) can only list, stat and download; a Writer
// (the publisher, write key) can upload. Addressing is path-style
// (endpoint/bucket/key), which every S3-compatible server understands.
//
// Checksum policy: the SDK computes and validates S3 checksums only when an
// operation requires them (aws.RequestChecksumCalculationWhenRequired and
// aws.ResponseChecksumValidationWhenRequired, set on the S3 client and again
// on the multipart uploader, which has its own default). Integrity is
// guaranteed end to end by the model container's HMAC, which the daemon
// verifies while it downloads; S3 checksums would only add CPU time and are
// not implemented alike by every S3-compatible server.
//
// Downloads are ranged and resumable: when the connection breaks, Download
// asks again for "bytes=N-" from the first byte it does not have yet, with
// exponential backoff and jitter, and gives up only after MaxAttempts failures
// in a row without progress. A resume at the object's end (416 to
// "bytes=<size>-") is done, not a failure; a server that ignores Range and
// sends the whole object again has the bytes already held skipped.
package cdn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/azaion/edge/daemon/internal/apiclient"
)

// Credentials are an S3 access key id and secret. They never print.
type Credentials struct {
	KeyID  string
	Secret string
}

// String redacts the secret.
func (c Credentials) String() string { return c.KeyID + ":[redacted]" }

// GoString redacts the secret.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts the secret.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Config configures a Reader or a Writer.
type Config struct {
	// Endpoint is the S3 endpoint URL (https, or http on loopback for tests).
	Endpoint string
	// Region is the S3 region (default us-east-1).
	Region string
	// Bucket holds the big parts.
	Bucket string
	// CAFile is an optional PEM file of extra trusted CA certificates.
	CAFile string
	// PartSize is the multipart upload part size (default 16 MiB).
	PartSize int64
	// Concurrency is the number of parts uploaded at once (default 4).
	Concurrency int
	// MaxAttempts is how many download attempts in a row may fail without
	// progress before Download gives up (default 8).
	MaxAttempts int
	// BaseDelay and MaxDelay shape the download backoff (defaults 250ms, 4s).
	BaseDelay, MaxDelay time.Duration
	// Logger receives retry warnings (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Endpoint == "" {
		return errors.New("cdn: endpoint is empty")
	}
	if !strings.HasPrefix(c.Endpoint, "https://") && !strings.HasPrefix(c.Endpoint, "http://") {
		return fmt.Errorf("cdn: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	if c.Bucket == "" {
		return errors.New("cdn: bucket is empty")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.PartSize <= 0 {
		c.PartSize = 16 << 20
	}
	if c.PartSize < manager.MinUploadPartSize {
		c.PartSize = manager.MinUploadPartSize
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = 250 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 4 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func newS3(c Config, cred Credentials) (*s3.Client, error) {
	if cred.KeyID == "" || cred.Secret == "" {
		return nil, errors.New("cdn: access key id and secret are required")
	}
	tlsConf, err := apiclient.TLSConfig(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cdn: %w", err)
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = tlsConf
		tr.MaxIdleConnsPerHost = 16
	})
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(c.Endpoint),
		Region:                     c.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(cred.KeyID, cred.Secret, ""),
		UsePathStyle:               true,
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	}), nil
}

// Reader lists and downloads objects with the read credentials.
type Reader struct {
	cfg Config
	s3  *s3.Client
}

// NewReader returns a Reader. It does not contact the CDN.
func NewReader(cfg Config, cred Credentials) (*Reader, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c, err := newS3(cfg, cred)
	if err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg, s3: c}, nil
}

// S3 returns the underlying S3 client (for benchmarks that compare with a
// plain GetObject).
func (r *Reader) S3() *s3.Client { return r.s3 }

// Bucket returns the bucket name.
func (r *Reader) Bucket() string { return r.cfg.Bucket }

// ErrNotFound: no such object or bucket.
var ErrNotFound = errors.New("not found on the CDN")

// ErrAccess: the CDN refused the credentials.
var ErrAccess = errors.New("the CDN refused the credentials")

// ErrBeyondEnd: a resume offset lies beyond the end of the object.
var ErrBeyondEnd = errors.New("resume offset beyond the end of the object")

// ErrSizeChanged: the object's size is not the one expected.
var ErrSizeChanged = errors.New("the object's size changed")

// classify turns permanent S3 errors into ErrNotFound / ErrAccess.
func classify(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return fmt.Errorf("%w: %s", ErrNotFound, ae.ErrorCode())
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "XAdminUserNotFound":
			return fmt.Errorf("%w: %s", ErrAccess, ae.ErrorCode())
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		case http.StatusForbidden, http.StatusUnauthorized:
			return fmt.Errorf("%w: %v", ErrAccess, err)
		}
	}
	return nil
}

// Size returns the size of the object at key.
func (r *Reader) Size(ctx context.Context, key string) (int64, error) {
	out, err := r.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.cfg.Bucket, Key: &key})
	if err != nil {
		if perm := classify(err); perm != nil {
			return 0, fmt.Errorf("stat %s: %w", key, perm)
		}
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Prefixes lists the "folders" right under prefix (which ends with '/'),
// without the prefix and the trailing '/'.
func (r *Reader) Prefixes(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{Bucket: &r.cfg.Bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if perm := classify(err); perm != nil {
				return nil, fmt.Errorf("list %s: %w", prefix, perm)
			}
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			s := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// DownloadOptions tune Download.
type DownloadOptions struct {
	// Offset is the first byte to fetch (to resume a partial download).
	Offset int64
	// Size, when positive, is the object's expected size: a different size is
	// refused before any byte is written.
	Size int64
	// OnRequest is called with the start offset of every GET (0 for the
	// first, unranged one; the resume offset after an interruption).
	OnRequest func(start int64)
	// Progress is called after each write with the total bytes written so far
	// (Offset included).
	Progress func(done, total int64)
}

type trackingWriter struct {
	w   io.Writer
	n   int64
	err error
	fn  func(n int64)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.n += int64(n)
	if err != nil {
		t.err = err
	}
	if t.fn != nil {
		t.fn(t.n)
	}
	return n, err
}

// Download writes the object at key to w from opt.Offset on, resuming with
// ranged requests after interruptions. It returns the object's total size.
// An error from w stops it at once.
//
// A resume at the object's end (every byte arrived earlier, e.g. before a
// crash) fetches nothing: the CDN's 416 answer to "bytes=<size>-" is checked
// against the object's size and means done. An offset beyond the end is
// refused with ErrBeyondEnd. A server that ignores Range and answers 200
// with the whole object has the bytes already held skipped. Every response
// body is closed before the next request.
func (r *Reader) Download(ctx context.Context, key string, w io.Writer, opt DownloadOptions) (int64, error) {
	pos, total := opt.Offset, opt.Size
	if total > 0 && pos > total {
		return 0, fmt.Errorf("download %s: %w: offset %d, the object has %d bytes", key, ErrBeyondEnd, pos, total)
	}
	tw := &trackingWriter{w: w}
	tw.fn = func(n int64) {
		if opt.Progress != nil {
			opt.Progress(pos+n, total)
		}
	}
	failures := 0
	for {
		if total > 0 && pos == total {
			return total, nil
		}
		if opt.OnRequest != nil {
			opt.OnRequest(pos)
		}
		tw.n = 0
		err := r.fetch(ctx, key, pos, &total, tw)
		pos += tw.n
		if tw.err != nil {
			return 0, fmt.Errorf("download %s: %w", key, tw.err)
		}
		if err == nil {
			return total, nil
		}
		if errors.Is(err, ErrBeyondEnd) || errors.Is(err, ErrSizeChanged) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAccess) {
			return 0, fmt.Errorf("download %s: %w", key, err)
		}
		if tw.n > 0 {
			failures = 0 // progress was made
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if perm := classify(err); perm != nil {
			return 0, fmt.Errorf("download %s: %w", key, perm)
		}
		failures++
		if failures >= r.cfg.MaxAttempts {
			return 0, fmt.Errorf("download %s: gave up at byte %d after %d attempts: %w", key, pos, failures, err)
		}
		d := r.cfg.BaseDelay << min(failures-1, 16)
		if d > r.cfg.MaxDelay || d <= 0 {
			d = r.cfg.MaxDelay
		}
		d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
		r.cfg.Logger.Warn("cdn download interrupted; resuming", "key", key, "at", pos, "wait", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// fetch makes one GET of key from byte pos on and copies the answer to tw
// (tw.n counts the new bytes written). *total is the object's size when
// known (0 when not yet): an answer with another size is refused, and the
// first answer sets it. It returns nil once the object's last byte is
// written. The response body is always closed.
func (r *Reader) fetch(ctx context.Context, key string, pos int64, total *int64, tw *trackingWriter) error {
	in := &s3.GetObjectInput{Bucket: &r.cfg.Bucket, Key: &key}
	if pos > 0 {
		in.Range = aws.String("bytes=" + strconv.FormatInt(pos, 10) + "-")
	}
	out, err := r.s3.GetObject(ctx, in)
	if err != nil {
		if pos > 0 && isInvalidRange(err) {
			return r.atEnd(ctx, key, pos, total)
		}
		return err
	}
	defer out.Body.Close()
	size, skip, err := objectSize(out, pos)
	if err != nil {
		return err
	}
	if err := sameSize(size, total); err != nil {
		return err
	}
	if skip > 0 {
		// The server ignored Range and sends the whole object: skip what
		// is already held.
		if n, err := io.CopyN(io.Discard, out.Body, skip); err != nil {
			return fmt.Errorf("skipping the %d bytes already held (the server ignores Range): %w after %d", skip, err, n)
		}
	}
	_, err = io.Copy(tw, io.LimitReader(out.Body, size-pos))
	if tw.err != nil {
		return tw.err
	}
	if err == nil && pos+tw.n < size {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// sameSize checks an answer's object size against the one known (0: none
// yet, which it sets).
func sameSize(size int64, total *int64) error {
	if *total > 0 && size != *total {
		return fmt.Errorf("%w: the CDN has %d bytes, expected %d", ErrSizeChanged, size, *total)
	}
	*total = size
	return nil
}

// atEnd answers a 416 to "bytes=pos-": the object ends at or before pos.
// When it has exactly pos bytes, every byte is already held (nil).
func (r *Reader) atEnd(ctx context.Context, key string, pos int64, total *int64) error {
	size, err := r.Size(ctx, key)
	if err != nil {
		return err
	}
	if err := sameSize(size, total); err != nil {
		return err
	}
	if size == pos {
		return nil
	}
	return fmt.Errorf("%w: offset %d, the object has %d bytes", ErrBeyondEnd, pos, size)
}

func isInvalidRange(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// objectSize returns the total object size from a GetObject answer and how
// many leading bytes of the body to skip: a ranged answer must start at
// pos; a whole-object answer to a ranged request (a server that ignores
// Range) has the first pos bytes skipped.
func objectSize(out *s3.GetObjectOutput, pos int64) (size, skip int64, err error) {
	if out.ContentRange == nil {
		if out.ContentLength == nil || *out.ContentLength < 0 {
			return 0, 0, errors.New("no content length")
		}
		size = *out.ContentLength
		if size < pos {
			return 0, 0, fmt.Errorf("%w: offset %d, the object has %d bytes", ErrBeyondEnd, pos, size)
		}
		return size, pos, nil
	}
	cr := aws.ToString(out.ContentRange) // "bytes START-END/TOTAL"
	var start, end int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &size); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q", cr)
	}
	if start != pos || end >= size || size < 0 {
		return 0, 0, fmt.Errorf("Content-Range %q does not start at %d", cr, pos)
	}
	return size, 0, nil
}

// Writer uploads objects with the write credentials.
type Writer struct {
	cfg Config
	s3  *s3.Client
	up  *manager.Uploader
}

// NewWriter returns a Writer. It does not contact the CDN.
func NewWriter(cfg Config, cred Credentials) (*Writer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c, err := newS3(cfg, cred)
	if err != nil {
		return nil, err
	}
	up := manager.NewUploader(c, func(u *manager.Uploader) {
		u.PartSize = cfg.PartSize
		u.Concurrency = cfg.Concurrency
		// The uploader has its own checksum default (WhenSupported): set ours.
		u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	return &Writer{cfg: cfg, s3: c, up: up}, nil
}

// EnsureBucket creates the bucket when it does not exist.
func (w *Writer) EnsureBucket(ctx context.Context) error {
	_, err := w.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &w.cfg.Bucket})
	if err == nil {
		return nil
	}
	_, err = w.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &w.cfg.Bucket})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", w.cfg.Bucket, err)
	}
	return nil
}

// Upload stores body (size bytes) at key, in parts of PartSize when it is
// larger. body must be an io.ReadSeeker so that a plain-http endpoint can
// sign the payload; other readers are sent with an unsigned payload.
func (w *Writer) Upload(ctx context.Context, key string, body io.Reader, size int64) error {
	in := &s3.PutObjectInput{Bucket: &w.cfg.Bucket, Key: &key, Body: body, ContentType: aws.String("application/octet-stream")}
	var opts []func(*manager.Uploader)
	if _, seekable := body.(io.ReadSeeker); !seekable && size <= w.cfg.PartSize {
		opts = append(opts, manager.WithUploaderRequestOptions(s3.WithAPIOptions(unsignedPayload)))
	}
	if _, err := w.up.Upload(ctx, in, opts...); err != nil {
		if perm := classify(err); perm != nil {
			return fmt.Errorf("upload %s: %w", key, perm)
		}
		return fmt.Errorf("upload %s: %w", key, err)
	}
	return nil
}

// unsignedPayload sends a non-seekable body with UNSIGNED-PAYLOAD instead of
// its SHA-256, which the signer cannot compute without reading it twice.
var unsignedPayload = v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware
