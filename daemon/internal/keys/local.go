package keys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LocalEmail is the e-mail of the credentials made by LocalCredentials.
const LocalEmail = "local@azaion-edge"

// LocalCredentials returns credentials made from a random 256-bit secret kept
// in the file at path (mode 0600; created with its folder when missing). They
// seal models imported on this machine (`azaion models import`) when no Azaion
// credentials are configured. A file with a wider mode is refused.
func LocalCredentials(path string) (Credentials, error) {
	b, err := readPrivate(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := create(path); err != nil {
			return Credentials{}, fmt.Errorf("local key: %w", err)
		}
		b, err = readPrivate(path)
	}
	if err != nil {
		return Credentials{}, err
	}
	s := strings.TrimSpace(string(b))
	if d, err := hex.DecodeString(s); err != nil || len(d) != 32 {
		return Credentials{}, fmt.Errorf("local key %s: not 64 hex digits", path)
	}
	return Credentials{Email: LocalEmail, Password: s}, nil
}

func readPrivate(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("local key %s has mode %04o: refusing it, make it 0600", path, perm)
	}
	return os.ReadFile(path)
}

func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var s [32]byte
	if _, err := rand.Read(s[:]); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	_, err = f.WriteString(hex.EncodeToString(s[:]) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) { // never replaces a key made concurrently
		return err
	}
	return nil
}
