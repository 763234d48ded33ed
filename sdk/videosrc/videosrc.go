// Package videosrc says what a video source is — a file the backend plugin
// reads, or a live stream URL (rtsp://, rtsps://) — checks stream URLs, and
// keeps the credentials a URL may carry out of logs, metrics and API answers
// (Redact, Scrub and the Secret type). It is cgo-free and imported by the
// daemon, the plugins and the CLI.
package videosrc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Mask replaces a credential in redacted text.
const Mask = "xxxxx"

// StreamSchemes are the URL schemes of live streams the backends open.
var StreamSchemes = []string{"rtsp", "rtsps"}

// ErrBadURL marks a stream URL that cannot be used.
var ErrBadURL = errors.New("bad stream URL")

// IsStream reports whether src names a live stream (it has a URL scheme)
// rather than a file.
func IsStream(src string) bool {
	i := strings.Index(src, "://")
	if i <= 0 {
		return false
	}
	for _, r := range src[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// CheckStream checks that raw is a stream URL a backend can open: scheme
// rtsp or rtsps, a host, no control characters. Its errors never quote the
// credentials.
func CheckStream(raw string) (*url.URL, error) {
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: it contains control characters", ErrBadURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not parse", ErrBadURL, Redact(raw))
	}
	ok := false
	for _, s := range StreamSchemes {
		ok = ok || strings.EqualFold(u.Scheme, s)
	}
	if !ok {
		return nil, fmt.Errorf("%w: scheme %q is not one of %s", ErrBadURL, u.Scheme, strings.Join(StreamSchemes, ", "))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrBadURL, Redact(raw))
	}
	return u, nil
}

// secretParam reports whether a query parameter's value is a credential.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"pass", "pwd", "token", "secret", "key", "auth", "sig", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// secrets returns the credentials inside a URL: the userinfo password and
// the values of query parameters that look like credentials.
func secrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
		if esc := url.QueryEscape(p); esc != p {
			out = append(out, esc)
		}
		if esc := url.PathEscape(p); esc != p {
			out = append(out, esc)
		}
	}
	for k, vs := range u.Query() {
		if !secretParam(k) {
			continue
		}
		for _, v := range vs {
			if v != "" {
				out = append(out, v)
				if esc := url.QueryEscape(v); esc != v {
					out = append(out, esc)
				}
			}
		}
	}
	return out
}

// Redact returns a stream URL with its password and credential-like query
// values replaced by Mask (rtsp://user:xxxxx@host/path); a file path or a
// string that does not parse as a URL comes back with any "user:pass@"
// part masked.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return redactLoose(raw)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			if secretParam(k) {
				for i := range vs {
					vs[i] = Mask
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactLoose masks "scheme://user:pass@" in a string that is not a clean URL.
func redactLoose(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return s
	}
	if c := strings.IndexByte(rest[:at], ':'); c >= 0 && !strings.ContainsAny(rest[:at], "/?#") {
		return s[:i+3] + rest[:c+1] + Mask + rest[at:]
	}
	return s
}

// Scrub replaces every credential of the source src that appears in s (an
// error message, a log line) with Mask, however the message quotes it.
func Scrub(s, src string) string {
	for _, sec := range secrets(src) {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// Secret is a video source that may carry credentials. Printing, logging
// or encoding it to JSON shows the redacted form; Reveal returns the source
// itself, for the one call that opens it.
type Secret string

// String returns the redacted source.
func (s Secret) String() string { return Redact(string(s)) }

// Reveal returns the source with its credentials.
func (s Secret) Reveal() string { return string(s) }

// LogValue logs the redacted source.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText encodes the redacted source (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Scrub removes the source's credentials from s.
func (s Secret) Scrub(msg string) string { return Scrub(msg, string(s)) }

// HasCredentials reports whether a stream URL carries a password or a
// credential-like query value.
func HasCredentials(raw string) bool { return len(secrets(raw)) > 0 }

// Format names the container or stream format a video file starts like
// (mp4, matroska, avi, mpegts, mpeg, flv, ogg, asf, annexb), or returns
// "" when its first bytes are not those of a video format FFmpeg reads.
func Format(b []byte) string {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case len(b) >= 8 && (has(4, "ftyp") || has(4, "moov") || has(4, "mdat") || has(4, "free") || has(4, "wide") || has(4, "skip")):
		return "mp4"
	case has(0, "\x1a\x45\xdf\xa3"):
		return "matroska"
	case has(0, "RIFF") && has(8, "AVI "):
		return "avi"
	case len(b) > 188 && b[0] == 0x47 && b[188] == 0x47:
		return "mpegts"
	case has(0, "\x00\x00\x01\xba"), has(0, "\x00\x00\x01\xb3"):
		return "mpeg"
	case has(0, "FLV\x01"):
		return "flv"
	case has(0, "OggS"):
		return "ogg"
	case has(0, "\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
		return "asf"
	case has(0, "\x00\x00\x00\x01"), has(0, "\x00\x00\x01") && len(b) > 3 && b[3]&0x80 == 0:
		return "annexb"
	}
	return ""
}
