package apiclient

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseLogin: whatever the API answers to a login, the client either
// refuses it as an invalid response or keeps a token shaped like a JWT.
func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{`{"token":"aaa.bbb.ccc"}`, `{"token":""}`, `{"token":"a.b"}`, `{"token":"a.b.c<script>"}`,
		`{}`, `[]`, `null`, `{"token":123}`, `{"token":"` + strings.Repeat("a.", 5000) + `"}`, ``, `{"token":"x.y.z","extra":{"a":[1,2]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := parseLogin(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) || tok != "" {
				t.Fatalf("parseLogin(%q) = %q, %v", b, tok, err)
			}
			return
		}
		if !looksLikeJWT(tok) {
			t.Fatalf("parseLogin(%q) kept %q", b, tok)
		}
	})
}

// FuzzSanitize: an API error body shown to the user never carries control
// characters (terminal escapes, newlines that forge log lines).
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "multi\nline", "\x1b[31mred\x1b[0m", "tab\there", "\u202eRTL", "nul\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range sanitize(s) {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("sanitize(%q) kept control character %U", s, r)
			}
		}
	})
}
