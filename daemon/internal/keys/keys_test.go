package keys

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

const hwA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const hwB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestEnvelope(t *testing.T) {
	alice := Credentials{Email: "Alice@Example.com ", Password: "s3cret"}
	k, err := Derive(alice, hwA)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("small part bytes")
	env, err := k.Seal(data)
	if err != nil {
		t.Fatal(err)
	}
	// The same credentials (e-mail case and spaces aside) open it.
	k2, _ := Derive(Credentials{Email: "alice@example.com", Password: "s3cret"}, hwA)
	if got, err := k2.Open(env); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("open: %q %v", got, err)
	}
	flipped := bytes.Clone(env)
	flipped[len(flipped)-40] ^= 1
	otherHW, _ := Derive(alice, hwB)
	otherPW, _ := Derive(Credentials{Email: "alice@example.com", Password: "wrong"}, hwA)
	for _, tc := range []struct {
		name string
		key  Key
		env  []byte
		want error
	}{
		{"wrong hardware hash", otherHW, env, ErrWrongHardware},
		{"wrong password", otherPW, env, ErrWrongCredentials},
		{"flipped byte", k, flipped, ErrEnvelope},
		{"truncated", k, env[:len(env)-1], ErrEnvelope},
		{"empty", k, nil, ErrEnvelope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.key.Open(tc.env)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("got %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestDeriveRejects(t *testing.T) {
	if _, err := Derive(Credentials{Email: "a", Password: "b"}, "xyz"); err == nil {
		t.Fatal("accepted a bad hardware hash")
	}
	if _, err := Derive(Credentials{Email: "a"}, hwA); err == nil {
		t.Fatal("accepted an empty password")
	}
}

func TestNeverPrinted(t *testing.T) {
	c := Credentials{Email: "a@b", Password: "hunter2"}
	k, _ := Derive(c, hwA)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "cred", c, "key", k)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %v %+v %#v", c, c, c, k, k, k)
	if strings.Contains(out, "hunter2") {
		t.Fatalf("password printed: %s", out)
	}
}

func TestLocalCredentials(t *testing.T) {
	p := t.TempDir() + "/keys/local.key"
	a, err := LocalCredentials(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LocalCredentials(p)
	if err != nil || a != b {
		t.Fatalf("second read: %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LocalCredentials(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("wide mode not refused by name: %v", err)
	}
}

// TestNoCredentialCheck: an envelope carries nothing derived from the
// credentials alone, so holding one does not allow guessing passwords
// offline: the headers of envelopes sealed for two passwords on the same
// machine are the same but for the random IV.
func TestNoCredentialCheck(t *testing.T) {
	a, _ := Derive(Credentials{Email: "a@b", Password: "one"}, hwA)
	b, _ := Derive(Credentials{Email: "a@b", Password: "two"}, hwA)
	ea, _ := a.Seal([]byte("x"))
	eb, _ := b.Seal([]byte("x"))
	if !bytes.Equal(ea[:24], eb[:24]) {
		t.Fatalf("headers differ by password:\n%x\n%x", ea[:24], eb[:24])
	}
	if Version(ea) != EnvelopeVersion || !bytes.Equal(ea[16:24], make([]byte, 8)) {
		t.Fatalf("version %d, reserved %x", Version(ea), ea[16:24])
	}
}

// TestOpenVersion1: envelopes of the old format (with a credential check at
// offset 16) still open.
func TestOpenVersion1(t *testing.T) {
	k, _ := Derive(Credentials{Email: "a@b", Password: "one"}, hwA)
	v1, _ := k.SealVersion1([]byte("old small part"), [8]byte{'c', 'h', 'k'})
	if got, err := k.Open(v1); err != nil || string(got) != "old small part" || Version(v1) != 1 {
		t.Fatalf("open v1: %q, %v", got, err)
	}
}
