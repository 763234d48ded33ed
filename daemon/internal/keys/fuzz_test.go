package keys

import (
	"errors"
	"testing"
)

// FuzzOpen: an envelope as the API serves it, whatever its bytes, either
// opens (only the one sealed with the key) or is refused with one of the
// package's errors; nothing panics or decrypts unauthenticated bytes.
func FuzzOpen(f *testing.F) {
	k, err := Derive(Credentials{Email: "a@b", Password: "pw"}, hwA)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := k.Seal([]byte("small part"))
	old, _ := k.SealVersion1([]byte("small part"), [8]byte{1})
	f.Add(good)
	f.Add(old)
	f.Add(good[:40])
	f.Add([]byte("AZHB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, env []byte) {
		pt, err := k.Open(env)
		if err != nil {
			if pt != nil || !(errors.Is(err, ErrEnvelope) || errors.Is(err, ErrWrongHardware) || errors.Is(err, ErrWrongCredentials)) {
				t.Fatalf("Open: %q, %v", pt, err)
			}
			return
		}
		if string(pt) != "small part" {
			t.Fatalf("opened forged bytes: %q", pt)
		}
	})
}
