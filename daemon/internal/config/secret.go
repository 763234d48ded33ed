package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a credential or key. It never prints: fmt and slog show a
// redaction marker instead of its value.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret's value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// ReadSecretFile reads a secret from a file that only its owner may read or
// write (mode 0600 or stricter); a wider mode is refused, naming the file.
// Surrounding whitespace is trimmed.
func ReadSecretFile(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("secret file %s has mode %04o: refusing it, make it 0600", path, perm)
	}
	b := make([]byte, 64<<10)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	if n == len(b) {
		return "", fmt.Errorf("secret file %s is larger than 64 KiB", path)
	}
	return Secret(strings.TrimSpace(string(b[:n]))), nil
}

// secretFrom returns the value of env var key when set, else the content of
// file (when set), else "". field names the YAML field for errors.
func secretFrom(env LookupEnv, key, file, field string) (Secret, error) {
	if v, ok := env(key); ok && v != "" {
		return Secret(v), nil
	}
	if file == "" {
		return "", nil
	}
	s, err := ReadSecretFile(file)
	if err != nil {
		return "", fmt.Errorf("config: %s: %w", field, err)
	}
	return s, nil
}
