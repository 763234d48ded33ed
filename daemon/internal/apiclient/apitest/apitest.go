// Package apitest is an in-process fake of the Azaion REST API for tests: a
// TLS server (httptest) that follows the protocol documented in apiclient:
// login with e-mail and password -> JWT, multipart upload of resources,
// resources served inside the hardware-bound envelope of daemon/internal/keys.
// It also lets a test expire tokens, inject failures and bind a user to one
// machine. It is imported only by tests.
package apitest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/keys"
)

// Server is the fake API.
type Server struct {
	// URL is the https base URL.
	URL string
	// CAFile is a PEM file with the server's certificate, for apiclient.Config.CAFile.
	CAFile string

	srv    *httptest.Server
	secret []byte

	mu        sync.Mutex
	users     map[string]string // e-mail -> password
	hardware  map[string]string // e-mail -> the only hardware hash allowed
	resources map[string][]byte // folder/name -> bytes
	epoch     int               // tokens of older epochs are expired
	fail      []int             // statuses to answer to the next calls
	redirect  string            // where to redirect the next call (307)
	calls     map[string]int    // path -> count
	gets      []string          // folder/name of every resource requested
	logins    int
}

// New starts a fake API with the given users (e-mail -> password); it stops
// when the test ends.
func New(t testing.TB, users map[string]string) *Server {
	t.Helper()
	s := &Server{users: map[string]string{}, hardware: map[string]string{}, resources: map[string][]byte{}, calls: map[string]int{}}
	for e, p := range users {
		s.users[strings.ToLower(e)] = p
	}
	s.secret = make([]byte, 32)
	rand.Read(s.secret)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /resources/get/{folder}", s.get)
	mux.HandleFunc("POST /resources/{folder}", s.upload)
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		var st int
		if len(s.fail) > 0 {
			st, s.fail = s.fail[0], s.fail[1:]
		}
		to := s.redirect
		s.redirect = ""
		s.mu.Unlock()
		if to != "" {
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
			return
		}
		if st != 0 {
			http.Error(w, "injected failure", st)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(t.TempDir(), "api-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Close stops the server (the API is down from then on).
func (s *Server) Close() { s.srv.Close() }

// ExpireTokens makes every token issued so far answer 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	s.epoch++
	s.mu.Unlock()
}

// FailNext answers the next len(statuses) calls with these HTTP statuses.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.mu.Unlock()
}

// RedirectNext answers the next call with a 307 redirect to url.
func (s *Server) RedirectNext(url string) {
	s.mu.Lock()
	s.redirect = url
	s.mu.Unlock()
}

// BindHardware allows user email to fetch resources only for hardwareHash
// ("" lifts the restriction).
func (s *Server) BindHardware(email, hardwareHash string) {
	s.mu.Lock()
	if hardwareHash == "" {
		delete(s.hardware, strings.ToLower(email))
	} else {
		s.hardware[strings.ToLower(email)] = hardwareHash
	}
	s.mu.Unlock()
}

// Calls returns how many requests reached path.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Gets returns the resources requested so far ("folder/name", in order,
// found or not).
func (s *Server) Gets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.gets...)
}

// Logins returns how many logins succeeded.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Resource returns a stored resource (nil when absent).
func (s *Server) Resource(folder, name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resources[folder+"/"+name]
}

// SetResource stores (or replaces) a resource.
func (s *Server) SetResource(folder, name string, data []byte) {
	s.mu.Lock()
	s.resources[folder+"/"+name] = data
	s.mu.Unlock()
}

func (s *Server) token(email string) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p, _ := json.Marshal(map[string]any{"sub": email, "epoch": s.epoch, "exp": time.Now().Add(time.Hour).Unix()})
	msg := h + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(m.Sum(nil))
}

// user checks the bearer token and returns its user ("" when invalid).
func (s *Server) user(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		return ""
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return ""
	}
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Sub   string `json:"sub"`
		Epoch int    `json:"epoch"`
	}
	if json.Unmarshal(p, &claims) != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if claims.Epoch != s.epoch {
		return ""
	}
	return claims.Sub
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	s.mu.Lock()
	pw, ok := s.users[email]
	if !ok || pw != in.Password {
		s.mu.Unlock()
		http.Error(w, "wrong e-mail or password", http.StatusUnauthorized)
		return
	}
	s.logins++
	tok := s.token(email)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": tok})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if s.user(r) == "" {
		http.Error(w, "token expired", http.StatusUnauthorized)
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		http.Error(w, "bad multipart: "+err.Error(), http.StatusBadRequest)
		return
	}
	f, fh, err := r.FormFile("data")
	if err != nil {
		http.Error(w, "no data field", http.StatusBadRequest)
		return
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.SetResource(r.PathValue("folder"), fh.Filename, b)
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	email := s.user(r)
	if email == "" {
		http.Error(w, "token expired", http.StatusUnauthorized)
		return
	}
	var in struct {
		Filename     string `json:"filename"`
		HardwareHash string `json:"hardware_hash"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.gets = append(s.gets, r.PathValue("folder")+"/"+in.Filename)
	bound, isBound := s.hardware[email]
	data, ok := s.resources[r.PathValue("folder")+"/"+in.Filename]
	pw := s.users[email]
	s.mu.Unlock()
	if isBound && bound != in.HardwareHash {
		http.Error(w, "this machine is not allowed", http.StatusForbidden)
		return
	}
	if !ok {
		http.Error(w, "no such resource", http.StatusNotFound)
		return
	}
	k, err := keys.Derive(keys.Credentials{Email: email, Password: pw}, in.HardwareHash)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad hardware hash: %v", err), http.StatusBadRequest)
		return
	}
	env, err := k.Seal(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(env)
}
