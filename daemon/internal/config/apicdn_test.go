package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAPICDNSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("from-file\n"), 0o600)
	wide := filepath.Join(dir, "wide")
	os.WriteFile(wide, []byte("x"), 0o644)
	for _, tc := range []struct {
		name    string
		yaml    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "password from file", yaml: "api:\n  url: https://api.example\n  email: a@b\n  password_file: " + pw + "\n",
			check: func(t *testing.T, c *Config) {
				if c.API.Password.Reveal() != "from-file" || c.API.Email != "a@b" {
					t.Fatalf("%+v", c.API)
				}
			}},
		{name: "env overrides file", yaml: "api:\n  password_file: " + pw + "\n", env: map[string]string{"AZAION_API_PASSWORD": "env"},
			check: func(t *testing.T, c *Config) {
				if c.API.Password.Reveal() != "env" {
					t.Fatal(c.API.Password.Reveal())
				}
			}},
		{name: "wide password file refused", yaml: "api:\n  password_file: " + wide + "\n", wantErr: wide},
		{name: "wide cdn secret refused", yaml: "cdn:\n  read_secret_file: " + wide + "\n", wantErr: "cdn.read_secret_file"},
		{name: "plain http api refused", yaml: "api:\n  url: http://api.example\n", wantErr: "only https"},
		{name: "plain http cdn off loopback refused", yaml: "cdn:\n  endpoint: http://cdn.example\n", wantErr: "cdn.endpoint"},
		{name: "cdn env", env: map[string]string{"AZAION_CDN_ENDPOINT": "http://127.0.0.1:9000", "AZAION_CDN_READ_KEY_ID": "r",
			"AZAION_CDN_READ_SECRET": "rs", "AZAION_CDN_WRITE_KEY_ID": "w", "AZAION_CDN_WRITE_SECRET": "ws"},
			check: func(t *testing.T, c *Config) {
				if c.CDN.ReadSecret.Reveal() != "rs" || c.CDN.WriteSecret.Reveal() != "ws" || c.CDN.Bucket != "azaion-models" {
					t.Fatalf("%+v", c.CDN)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if tc.yaml != "" {
				if err := decodeStrict([]byte(tc.yaml), &c); err != nil {
					t.Fatal(err)
				}
			}
			err := c.applyEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err == nil {
				err = c.Validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &c)
		})
	}
}
