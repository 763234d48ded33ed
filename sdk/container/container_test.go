package container

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/azaion/edge/sdk/model"
)

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	s, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(s)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const vectorPlain = "Azaion test vector: this is not a model."

func TestVector(t *testing.T) {
	small := readHex(t, "testdata/vector1.small.hex")
	big := readHex(t, "testdata/vector1.big.hex")
	s, err := Seal([]byte(vectorPlain), model.Descriptor{Name: "vector", Version: "1", Format: "onnx"},
		SealOptions{SliceSize: 16, Rand: bytes.NewReader(seq(64))})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Small, small) {
		t.Errorf("small part differs from the vector:\n got %x\nwant %x", s.Small, small)
	}
	if !bytes.Equal(s.Big, big) {
		t.Errorf("big part differs from the vector:\n got %x\nwant %x", s.Big, big)
	}
	pt, h, err := Open(small, big)
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != vectorPlain || h.Descriptor.Name != "vector" {
		t.Fatalf("open: %q %+v", pt, h)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		slice int
	}{
		{"empty", 0, 0},
		{"one byte", 1, 0},
		{"block", 16, 0},
		{"smaller than slice", 1000, 0},
		{"default slice", 1 << 20, 0},
		{"slice bigger than ciphertext", 100, 1 << 20},
		{"odd slice", 50000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := make([]byte, tc.size)
			rand.Read(pt)
			s, err := Seal(pt, model.Descriptor{Name: "m", Version: "1"}, SealOptions{SliceSize: tc.slice})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(s.Big)) != s.Header.BigSize {
				t.Fatalf("big part %d bytes, header says %d", len(s.Big), s.Header.BigSize)
			}
			got, h, err := Open(s.Small, s.Big)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatal("plaintext differs")
			}
			sum := sha256.Sum256(pt)
			if h.PlaintextSHA256 != hex.EncodeToString(sum[:]) {
				t.Fatal("digest")
			}
			// Streaming in small writes gives the same result.
			sp, err := ParseSmall(s.Small)
			if err != nil {
				t.Fatal(err)
			}
			o := sp.NewOpener()
			for i := 0; i < len(s.Big); i += 7 {
				if _, err := o.Write(s.Big[i:min(i+7, len(s.Big))]); err != nil {
					t.Fatal(err)
				}
			}
			got, err = o.Finish()
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("streamed open: %v", err)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	pt := make([]byte, 100000)
	rand.Read(pt)
	a, err := Seal(pt, model.Descriptor{Name: "a", Version: "1"}, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(pt, model.Descriptor{Name: "b", Version: "1"}, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(p []byte, i int) []byte {
		c := bytes.Clone(p)
		c[i] ^= 0x01
		return c
	}
	hdrEnd := 12 + int(a.Small[11]) + int(a.Small[10])<<8
	for _, tc := range []struct {
		name       string
		small, big []byte
		want       error
		part       string
	}{
		{"flipped byte in small part slice", flip(a.Small, len(a.Small)-100), a.Big, ErrAuth, "small part"},
		{"flipped byte in small part key", flip(a.Small, hdrEnd+3), a.Big, ErrAuth, "small part"},
		{"flipped byte in small part tag", flip(a.Small, len(a.Small)-1), a.Big, ErrAuth, "big part"},
		{"flipped byte in small part magic", flip(a.Small, 0), a.Big, ErrFormat, "small part"},
		{"flipped byte in header", flip(a.Small, 40), a.Big, nil, "small part"},
		{"flipped byte in big part", flip(a.Big, len(a.Big)/2), a.Big, nil, ""},
		{"truncated small part", a.Small[:len(a.Small)-1], a.Big, ErrTruncated, "small part"},
		{"truncated small part header", a.Small[:20], a.Big, ErrTruncated, "small part"},
		{"truncated big part", a.Small, a.Big[:len(a.Big)-1], ErrTruncated, "big part"},
		{"big part only prefix", a.Small, a.Big[:BigPrefixSize], ErrTruncated, "big part"},
		{"longer big part", a.Small, append(bytes.Clone(a.Big), 0), ErrFormat, "big part"},
		{"small part from another model", b.Small, a.Big, ErrMismatch, "different models"},
		{"big part from another model", a.Small, b.Big, ErrMismatch, "different models"},
		{"empty", nil, nil, ErrTruncated, "small part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small, big := tc.small, tc.big
			if tc.name == "flipped byte in big part" {
				small, big = a.Small, flip(a.Big, len(a.Big)/2)
				tc.want, tc.part = ErrAuth, "big part"
			}
			got, _, err := Open(small, big)
			if err == nil {
				t.Fatal("opened a damaged container")
			}
			if got != nil {
				t.Fatal("returned plaintext with an error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.part) {
				t.Errorf("error %q does not say %q", err, tc.part)
			}
		})
	}
}

func FuzzParseSmall(f *testing.F) {
	s, err := Seal([]byte(vectorPlain), model.Descriptor{Name: "vector"}, SealOptions{SliceSize: 16, Rand: bytes.NewReader(seq(64))})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Small, s.Big)
	f.Add(s.Small[:40], s.Big[:10])
	f.Add([]byte("AZMC\x00\x01\x00\x00\xff\xff\xff\xff"), []byte("AZMB"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, small, big []byte) {
		sp, err := ParseSmall(small)
		if err != nil {
			return
		}
		o := sp.NewOpener()
		if _, err := o.Write(big); err != nil {
			return
		}
		pt, err := o.Finish()
		if err == nil && int64(len(pt)) != sp.Header.PlaintextSize {
			t.Fatalf("plaintext %d bytes, header says %d", len(pt), sp.Header.PlaintextSize)
		}
	})
}
