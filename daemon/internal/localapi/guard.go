package localapi

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/azaion/edge/sdk/api"
)

// Listener says how a listener's requests are checked.
type Listener struct {
	// Token, when not empty, is required as a bearer token (TCP listeners
	// that are not loopback).
	Token string
	// TCP is true for a TCP listener: the Host header must then name this
	// machine (DNS rebinding). Unix socket clients send any Host.
	TCP bool
	// Addr is the listener's address; its host is an allowed Host.
	Addr string
}

// bodyTypes are the Content-Types a POST to a path may carry, by path
// prefix; every other POST carries JSON (application/json, which a web page
// cannot send to another origin without the CORS preflight this API never
// answers).
var bodyTypes = []struct {
	prefix string
	types  []string // exact media types, or "image/*"-style prefixes
}{
	{"/v1/detect", []string{"image/*", "video/*", "application/octet-stream", "multipart/form-data"}},
	// A model file; application/octet-stream is not a type a cross-site
	// form can send.
	{"/v1/models/import", []string{"application/octet-stream"}},
}

// guard refuses what a web page open on this machine could make a browser
// send: a Host that does not name this machine (DNS rebinding), an Origin
// not configured as allowed, a cross-site fetch, and a POST whose body does
// not carry its real Content-Type (the types a cross-site form can send).
func (s *Server) guard(l Listener, next http.Handler) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, h := range s.opts.AllowedHosts {
		hosts[strings.ToLower(h)] = true
	}
	if h, _, err := net.SplitHostPort(l.Addr); err == nil {
		hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.TCP && !hostAllowed(r.Host, hosts) {
			writeErrorCode(w, api.CodeForbidden, 0, fmt.Sprintf("Host %q does not name this machine: use 127.0.0.1, localhost or a name in http.allowed_hosts", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !slices.Contains(s.opts.AllowedOrigins, o) {
			writeErrorCode(w, api.CodeForbidden, 0, fmt.Sprintf("cross-origin request from %q refused (allow it in http.allowed_origins)", o))
			return
		} else if o == "" && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeErrorCode(w, api.CodeForbidden, 0, "cross-site request refused")
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			if err := checkBodyType(r); err != nil {
				writeErrorCode(w, api.CodeUnsupportedType, 0, err.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether a Host header names this machine: a loopback
// address, or one of hosts.
func hostAllowed(hostport string, hosts map[string]bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return hosts[host]
}

// checkBodyType checks that a request body carries a Content-Type its route
// accepts.
func checkBodyType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt = ""
	}
	want := []string{"application/json"}
	for _, b := range bodyTypes {
		if r.URL.Path == b.prefix || strings.HasPrefix(r.URL.Path, b.prefix+"/") {
			want = b.types
			break
		}
	}
	for _, t := range want {
		if p, ok := strings.CutSuffix(t, "*"); ok && strings.HasPrefix(mt, p) || mt == t {
			return nil
		}
	}
	if mt == "" && r.ContentLength == 0 {
		return nil // no body at all (POST /v1/models/x/load, /v1/detect/video?path=...)
	}
	return fmt.Errorf("%s %s: Content-Type %q: want %s", r.Method, (&url.URL{Path: r.URL.Path}).String(), ct, strings.Join(want, ", "))
}
