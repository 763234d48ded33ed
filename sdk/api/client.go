package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultSocket is the daemon's Unix socket path.
const DefaultSocket = "/run/azaion/azaion.sock"

// DefaultAddr is the daemon's TCP address.
const DefaultAddr = "127.0.0.1:8470"

// Client talks to a running daemon. The zero value is not usable; use
// NewSocketClient, NewHTTPClient or FromEnv.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// NewSocketClient returns a client that dials the Unix socket at path.
func NewSocketClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 16,
	}
	return &Client{base: "http://azaion", http: &http.Client{Transport: tr}}
}

// NewHTTPClient returns a client for base (e.g. "http://127.0.0.1:8470"),
// sending token as a bearer token when it is not empty.
func NewHTTPClient(base, token string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &Client{base: strings.TrimRight(base, "/"), http: &http.Client{Transport: tr}, token: token}
}

// FromEnv returns a client for AZAION_HOST (an http:// URL, with
// AZAION_HTTP_TOKEN) when set, else for the Unix socket AZAION_SOCKET
// (default DefaultSocket).
func FromEnv() *Client {
	if h := os.Getenv("AZAION_HOST"); h != "" {
		return NewHTTPClient(h, os.Getenv("AZAION_HTTP_TOKEN"))
	}
	s := os.Getenv("AZAION_SOCKET")
	if s == "" {
		s = DefaultSocket
	}
	return NewSocketClient(s)
}

// Do sends a request and decodes a JSON response into out (when out is not
// nil). body, when not nil, is sent as is with contentType; an io.Reader body
// is streamed, any other value is encoded as JSON. Error responses become
// *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, body any, contentType string, out any) error {
	resp, err := c.Raw(ctx, method, path, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// Raw sends a request and returns the response when its status is 2xx (the
// caller closes the body); other statuses become *StatusError.
func (c *Client) Raw(ctx context.Context, method, path string, body any, contentType string) (*http.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(js)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

func readError(resp *http.Response) error {
	se := &StatusError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode)}
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		se.Code, se.Message = eb.Error.Code, eb.Error.Message
	} else {
		se.Message = strings.TrimSpace(string(b))
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil {
			se.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return se
}
