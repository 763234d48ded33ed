package apiclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient"
	"github.com/azaion/edge/daemon/internal/apiclient/apitest"
	"github.com/azaion/edge/daemon/internal/keys"
)

const hw = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var alice = keys.Credentials{Email: "alice@example.com", Password: "correct horse"}

func newClient(t *testing.T, srv *apitest.Server, cred keys.Credentials) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(apiclient.Config{URL: srv.URL, CAFile: srv.CAFile, Credentials: cred,
		BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUploadGet(t *testing.T) {
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	c := newClient(t, srv, alice)
	ctx := context.Background()
	data := []byte("small part")
	if err := c.Upload(ctx, "models", "m@1.small", data); err != nil {
		t.Fatal(err)
	}
	env, err := c.Get(ctx, "models", "m@1.small", hw)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.Derive(alice, hw)
	got, err := k.Open(env)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("envelope: %q %v", got, err)
	}
	if srv.Logins() != 1 {
		t.Fatalf("%d logins, want 1 (token reused)", srv.Logins())
	}
}

func TestRefreshAndRetry(t *testing.T) {
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	c := newClient(t, srv, alice)
	ctx := context.Background()
	srv.SetResource("models", "x", []byte("x"))
	if _, err := c.Get(ctx, "models", "x", hw); err != nil {
		t.Fatal(err)
	}
	t.Run("token refresh on 401", func(t *testing.T) {
		srv.ExpireTokens()
		if _, err := c.Get(ctx, "models", "x", hw); err != nil {
			t.Fatal(err)
		}
		if srv.Logins() != 2 {
			t.Fatalf("%d logins, want 2", srv.Logins())
		}
	})
	t.Run("retry on 5xx", func(t *testing.T) {
		before := srv.Calls("/resources/get/models")
		srv.FailNext(http.StatusBadGateway, http.StatusServiceUnavailable)
		if _, err := c.Get(ctx, "models", "x", hw); err != nil {
			t.Fatal(err)
		}
		if n := srv.Calls("/resources/get/models") - before; n != 3 {
			t.Fatalf("%d calls, want 3", n)
		}
	})
	t.Run("gives up after max attempts", func(t *testing.T) {
		srv.FailNext(500, 500, 500, 500)
		_, err := c.Get(ctx, "models", "x", hw)
		if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestErrors(t *testing.T) {
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	srv.SetResource("models", "x", []byte("x"))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cred keys.Credentials
		file string
		bind string
		want error
	}{
		{"wrong password", keys.Credentials{Email: alice.Email, Password: "wrong"}, "x", "", apiclient.ErrLogin},
		{"unknown resource", alice, "nope", "", apiclient.ErrNotFound},
		{"machine not allowed", alice, "x", strings.Repeat("f", 64), apiclient.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bind != "" {
				srv.BindHardware(alice.Email, tc.bind)
				defer srv.BindHardware(alice.Email, hw)
			}
			_, err := newClient(t, srv, tc.cred).Get(ctx, "models", tc.file, hw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTLSVerified(t *testing.T) {
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	// Without the CA file the fake's self-signed certificate is refused.
	c, err := apiclient.New(apiclient.Config{URL: srv.URL, Credentials: alice, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified TLS accepted: %v", err)
	}
	if _, err := apiclient.New(apiclient.Config{URL: "http://example.com"}); err == nil {
		t.Fatal("plain http accepted")
	}
}

func TestNeverLogsSecrets(t *testing.T) {
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	var logs bytes.Buffer
	c, _ := apiclient.New(apiclient.Config{URL: srv.URL, CAFile: srv.CAFile, Credentials: alice,
		BaseDelay: time.Millisecond, Logger: newLogger(&logs)})
	srv.SetResource("models", "x", []byte("x"))
	srv.FailNext(503)
	c.Get(context.Background(), "models", "x", hw)
	srv.ExpireTokens()
	c.Get(context.Background(), "models", "x", hw)
	if strings.Contains(logs.String(), alice.Password) || strings.Contains(logs.String(), "eyJ") {
		t.Fatalf("secret in logs: %s", logs.String())
	}
	if logs.Len() == 0 {
		t.Fatal("expected retry logs")
	}
}

// TestRefusesRedirects: a redirect (here to plain http) is never followed,
// so the login password and the key material never go anywhere else.
func TestRefusesRedirects(t *testing.T) {
	var got int
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer elsewhere.Close()
	srv := apitest.New(t, map[string]string{alice.Email: alice.Password})
	c := newClient(t, srv, alice)
	ctx := context.Background()
	srv.RedirectNext(elsewhere.URL + "/login")
	if _, err := c.Get(ctx, "models", "x", hw); !errors.Is(err, apiclient.ErrRedirect) {
		t.Fatalf("login redirected: err = %v, want ErrRedirect", err)
	}
	srv.SetResource("models", "x", []byte("x"))
	if _, err := c.Get(ctx, "models", "x", hw); err != nil { // logs in
		t.Fatal(err)
	}
	srv.RedirectNext(elsewhere.URL + "/resources/models")
	if err := c.Upload(ctx, "models", "y", []byte("small part")); !errors.Is(err, apiclient.ErrRedirect) {
		t.Fatalf("upload redirected: err = %v, want ErrRedirect", err)
	}
	if got != 0 {
		t.Fatalf("%d requests reached the redirect target", got)
	}
}
