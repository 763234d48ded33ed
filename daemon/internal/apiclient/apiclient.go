// Package apiclient is the daemon's client of the Azaion REST API, the
// external service that authenticates users and serves each machine the
// small parts of models inside a hardware-bound envelope. It is imported only
// by the daemon; apitest holds an in-process fake of the API for tests.
//
// # Protocol
//
//	POST {url}/login
//	    request  JSON {"email": "...", "password": "..."}
//	    200      JSON {"token": "<JWT>"}           401: wrong e-mail or password
//	POST {url}/resources/{folder}                  (Authorization: Bearer <JWT>)
//	    request  multipart/form-data, one file field "data" whose file name is
//	             the resource name
//	    200/201/204                                401: token expired
//	POST {url}/resources/get/{folder}              (Authorization: Bearer <JWT>)
//	    request  JSON {"filename": "...", "hardware_hash": "<64 hex digits>"}
//	    200      application/octet-stream: the resource inside a hardware-bound
//	             envelope (daemon/internal/keys) sealed with the key derived
//	             from the user's credentials and that hardware hash
//	    401: token expired, 403: this machine is not allowed, 404: no such resource
//
// Folder and resource names are letters, digits, '.', '_', '-' and '@'.
//
// The client logs in lazily, logs in again once when a call answers 401,
// retries 429, 5xx and network errors with exponential backoff and full
// jitter (honouring Retry-After), verifies TLS certificates always (against
// the system roots plus an optional CA file) and refuses plain http URLs.
// Every response body is size-limited and validated (a JWT shape for tokens,
// the envelope header for resources). Credentials and tokens are never
// logged.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/azaion/edge/daemon/internal/keys"
)

// Limits on what the API may send back.
const (
	maxLoginResponse = 64 << 10
	maxTokenSize     = 8 << 10
	maxErrorBody     = 4 << 10
	// DefaultMaxResource bounds a resource (a small part in its envelope).
	DefaultMaxResource = 64 << 20
)

// Errors the client returns (wrapped).
var (
	// ErrLogin: the API refused the credentials.
	ErrLogin = errors.New("login refused: wrong e-mail or password")
	// ErrForbidden: the API does not allow this machine (hardware hash).
	ErrForbidden = errors.New("forbidden: the API does not allow this machine or user")
	// ErrNotFound: no such resource.
	ErrNotFound = errors.New("resource not found")
	// ErrInvalidResponse: the API sent something malformed or oversized.
	ErrInvalidResponse = errors.New("invalid API response")
)

// Config configures a Client.
type Config struct {
	// URL is the API base URL; it must be https.
	URL string
	// CAFile is an optional PEM file of extra trusted CA certificates.
	CAFile string
	// Credentials log the user in.
	Credentials keys.Credentials
	// MaxAttempts per call (default 4).
	MaxAttempts int
	// BaseDelay and MaxDelay shape the backoff (defaults 200ms and 5s).
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one HTTP exchange (default 60s).
	Timeout time.Duration
	// MaxResource bounds a downloaded resource (default DefaultMaxResource).
	MaxResource int64
	// Logger receives retry warnings (default slog.Default()).
	Logger *slog.Logger
}

// Client is an Azaion REST API client; it is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client

	mu    sync.Mutex
	token string
}

// New validates cfg and returns a Client. It does not contact the API.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("api url %q is not a URL", cfg.URL)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("api url %q: only https is allowed", cfg.URL)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 200 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxResource <= 0 {
		cfg.MaxResource = DefaultMaxResource
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tlsConf, err := TLSConfig(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	return &Client{cfg: cfg, base: u, http: &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: refuseRedirect}}, nil
}

// TLSConfig returns a TLS configuration that verifies servers against the
// system roots plus the PEM certificates in caFile (when not empty).
func TLSConfig(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s holds no PEM certificate", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// ValidName reports whether s is a valid folder or resource name.
func ValidName(s string) bool {
	if s == "" || len(s) > 255 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return false
		}
	}
	return true
}

// Login logs in and keeps the token for later calls.
func (c *Client) Login(ctx context.Context) error {
	_, err := c.login(ctx)
	return err
}

func (c *Client) login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": c.cfg.Credentials.Email, "password": c.cfg.Credentials.Password})
	resp, err := c.do(ctx, "/login", "application/json", body, "")
	if err != nil {
		if isStatus(err, http.StatusUnauthorized) || isStatus(err, http.StatusForbidden) {
			return "", fmt.Errorf("login as %s: %w", c.cfg.Credentials.Email, ErrLogin)
		}
		return "", fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, maxLoginResponse)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	tok, err := parseLogin(b)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return tok, nil
}

// parseLogin reads the token from a login response ({"token": JWT}).
func parseLogin(b []byte) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	if !looksLikeJWT(out.Token) {
		return "", fmt.Errorf("%w: the token is not a JWT", ErrInvalidResponse)
	}
	return out.Token, nil
}

func looksLikeJWT(t string) bool {
	if t == "" || len(t) > maxTokenSize {
		return false
	}
	parts := strings.Split(t, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '=') {
			return false
		}
	}
	return true
}

// Upload stores data as resource name in folder.
func (c *Client) Upload(ctx context.Context, folder, name string, data []byte) error {
	if !ValidName(folder) || !ValidName(name) {
		return fmt.Errorf("upload %s/%s: invalid folder or resource name", folder, name)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("data", name)
	if err != nil {
		return err
	}
	fw.Write(data)
	mw.Close()
	resp, err := c.authed(ctx, "/resources/"+folder, mw.FormDataContentType(), buf.Bytes())
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", folder, name, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	return nil
}

// Get fetches resource name from folder for the machine with hardwareHash and
// returns it still inside its hardware-bound envelope.
func (c *Client) Get(ctx context.Context, folder, name, hardwareHash string) ([]byte, error) {
	if !ValidName(folder) || !ValidName(name) {
		return nil, fmt.Errorf("get %s/%s: invalid folder or resource name", folder, name)
	}
	if _, err := keys.ParseHardwareHash(hardwareHash); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"filename": name, "hardware_hash": hardwareHash})
	resp, err := c.authed(ctx, "/resources/get/"+folder, "application/json", body)
	if err != nil {
		switch {
		case isStatus(err, http.StatusNotFound):
			err = ErrNotFound
		case isStatus(err, http.StatusForbidden):
			err = ErrForbidden
		}
		return nil, fmt.Errorf("get %s/%s: %w", folder, name, err)
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, c.cfg.MaxResource)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", folder, name, err)
	}
	if len(b) < keys.EnvelopeOverhead || string(b[:4]) != keys.EnvelopeMagic {
		return nil, fmt.Errorf("get %s/%s: %w: not a hardware-bound envelope", folder, name, ErrInvalidResponse)
	}
	return b, nil
}

// authed sends an authenticated call, logging in first when there is no
// token and once more when the API answers 401.
func (c *Client) authed(ctx context.Context, path, ctype string, body []byte) (*http.Response, error) {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	var err error
	if tok == "" {
		if tok, err = c.login(ctx); err != nil {
			return nil, err
		}
	}
	resp, err := c.do(ctx, path, ctype, body, tok)
	if isStatus(err, http.StatusUnauthorized) {
		c.cfg.Logger.Info("api token rejected; logging in again", "path", path)
		if tok, err = c.login(ctx); err != nil {
			return nil, err
		}
		resp, err = c.do(ctx, path, ctype, body, tok)
	}
	return resp, err
}

// StatusError is a non-2xx answer of the API.
type StatusError struct {
	// Status is the HTTP status.
	Status int
	// Message is the start of the response body.
	Message string
	// RetryAfter is the server's hint, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("api answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("api answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func isStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// do sends one POST with retries on 429, 5xx and network errors.
func (c *Client) do(ctx context.Context, path, ctype string, body []byte, token string) (*http.Response, error) {
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.http.Do(req)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // the URL is in our message already
			}
			if errors.Is(err, ErrRedirect) { // permanent: never retried
				return nil, fmt.Errorf("POST %s: %w", path, err)
			}
			last = fmt.Errorf("POST %s: %w", path, err)
		case resp.StatusCode/100 == 2:
			return resp, nil
		default:
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			se := &StatusError{Status: resp.StatusCode, Message: strings.TrimSpace(sanitize(string(msg)))}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra >= 0 {
				se.RetryAfter = time.Duration(ra) * time.Second
				wait = min(se.RetryAfter, c.cfg.MaxDelay)
			}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return nil, se
			}
			last = se
		}
		if attempt >= c.cfg.MaxAttempts {
			return nil, fmt.Errorf("after %d attempts: %w", attempt, last)
		}
		if wait == 0 {
			wait = backoff(attempt, c.cfg.BaseDelay, c.cfg.MaxDelay)
		}
		c.cfg.Logger.Warn("api call failed; retrying", "path", path, "attempt", attempt, "wait", wait, "error", last)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// backoff returns a full-jitter exponential delay for attempt (1-based).
func backoff(attempt int, base, maxd time.Duration) time.Duration {
	d := base << min(attempt-1, 20)
	if d > maxd || d <= 0 {
		d = maxd
	}
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

// sanitize replaces control characters (C0, DEL, C1, and the bidirectional
// overrides) in text from the API, so it cannot forge log lines or drive a
// terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrInvalidResponse, limit)
	}
	return b, nil
}

// ErrRedirect: the API answered with a redirect. Requests carry the password
// and key material, so they are never re-sent elsewhere.
var ErrRedirect = errors.New("the API answered with a redirect, which is refused")

// refuseRedirect stops every redirect before it is followed.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("%w (to %s)", ErrRedirect, req.URL.Redacted())
}
