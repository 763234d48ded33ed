// Package keys derives the hardware-bound key of Azaion Edge and seals and
// opens the hardware-bound envelope, the form in which the Azaion REST API
// serves a resource (a model's small part) to one machine, and in which the
// local model store keeps it. It is imported by the daemon and by the test
// fake of the REST API.
//
// # Hardware-bound key
//
// With E = the e-mail, lower-cased and trimmed, and P = the password, both as
// UTF-8, the input keying material is
//
//	IKM = "azaion-credentials/v1" || u32be(len(E)) || E || u32be(len(P)) || P
//
// and with HW = the 32 raw bytes of the hardware hash (see
// daemon/internal/fingerprint):
//
//	key   = HKDF-SHA256(IKM, salt HW,    info "azaion-edge hardware-bound key v1", 64 bytes)
//	        enc = key[0:32] (AES-256), mac = key[32:64] (HMAC-SHA256)
//	hwcheck = SHA-256("azaion-edge hardware check v1" || HW)[0:8]
//
// # Envelope (integers big-endian)
//
//	off  size  field
//	0    4     magic "AZHB"
//	4    1     version = 2
//	5    3     reserved, 0
//	8    8     hwcheck
//	16   8     reserved, 0
//	24   16    IV (random)
//	40   n     AES-256-CBC(enc, IV, PKCS#7(resource))
//	40+n 32    HMAC-SHA256(mac, bytes[0:40+n])
//
// hwcheck only lets the opener say that an envelope was sealed for another
// machine; it is derived from the hardware hash alone and says nothing about
// the credentials. The tag is verified in constant time before anything is
// decrypted.
//
// Version 1 envelopes carried at offset 16 an 8-byte credential check,
// HKDF-SHA256(IKM, salt empty, info "azaion-edge credential check v1"),
// computed without the hardware hash: anyone holding such an envelope could
// test passwords offline at the speed of HKDF. Version 2 drops it. Open still
// reads version 1 (ignoring the check); the local model store rewrites the
// version 1 envelopes it holds as version 2 when it opens them (Upgrade).
package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Envelope constants.
const (
	// EnvelopeMagic starts every envelope.
	EnvelopeMagic = "AZHB"
	// EnvelopeVersion is the envelope format version Seal writes.
	EnvelopeVersion = 2
	// envelopeV1 is the old format, with a credential check (still opened).
	envelopeV1 = 1
	// EnvelopeOverhead is the most an envelope adds to its content.
	EnvelopeOverhead = 40 + 16 + sha256.Size

	infoKey      = "azaion-edge hardware-bound key v1"
	hwCheckLabel = "azaion-edge hardware check v1"
	ikmLabel     = "azaion-credentials/v1"
)

// Errors that say why an envelope did not open.
var (
	// ErrWrongHardware: the envelope was sealed for another hardware hash.
	ErrWrongHardware = errors.New("sealed for another machine (hardware hash differs)")
	// ErrWrongCredentials: the envelope was sealed for this machine but does
	// not open with these credentials (wrong e-mail or password). Since the
	// envelope carries nothing derived from the credentials alone, a
	// modified envelope reads the same; such errors wrap ErrEnvelope too.
	ErrWrongCredentials = errors.New("sealed for other credentials (wrong e-mail or password)")
	// ErrEnvelope: the envelope is malformed, truncated or was modified.
	ErrEnvelope = errors.New("hardware-bound envelope is corrupt or was modified")
)

// Credentials are the user's Azaion credentials. They never print.
type Credentials struct {
	Email    string
	Password string
}

// String redacts the password.
func (c Credentials) String() string { return c.Email + ":[redacted]" }

// GoString redacts the password.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts the password.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Key is a hardware-bound key. It never prints.
type Key struct {
	enc, mac []byte
	hwCheck  [8]byte
}

// String redacts the key.
func (Key) String() string { return "[hardware-bound key]" }

// GoString redacts the key.
func (k Key) GoString() string { return k.String() }

// LogValue redacts the key.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

func ikm(c Credentials) []byte {
	e := strings.ToLower(strings.TrimSpace(c.Email))
	b := make([]byte, 0, len(ikmLabel)+8+len(e)+len(c.Password))
	b = append(b, ikmLabel...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
	b = append(b, e...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Password)))
	b = append(b, c.Password...)
	return b
}

// ParseHardwareHash decodes a hex hardware hash (64 hex digits).
func ParseHardwareHash(hw string) ([]byte, error) {
	b, err := hex.DecodeString(hw)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("hardware hash %q is not 64 hex digits", hw)
	}
	return b, nil
}

// Derive returns the hardware-bound key for the credentials and the hardware
// hash (hex).
func Derive(c Credentials, hardwareHash string) (Key, error) {
	var k Key
	hw, err := ParseHardwareHash(hardwareHash)
	if err != nil {
		return k, err
	}
	if c.Email == "" || c.Password == "" {
		return k, errors.New("derive hardware-bound key: e-mail and password are required")
	}
	in := ikm(c)
	defer clear(in)
	key, err := hkdf.Key(sha256.New, in, hw, infoKey, 64)
	if err != nil {
		return k, err
	}
	k.enc, k.mac = key[:32], key[32:]
	h := sha256.New()
	h.Write([]byte(hwCheckLabel))
	h.Write(hw)
	copy(k.hwCheck[:], h.Sum(nil))
	return k, nil
}

// Seal encrypts data into a hardware-bound envelope.
func (k Key) Seal(data []byte) ([]byte, error) { return k.seal(data, EnvelopeVersion) }

// SealVersion1 seals data in the old version 1 format, with check as its
// credential check. Nothing writes that format any more; it exists so that
// reading and upgrading old envelopes can be tested.
func (k Key) SealVersion1(data []byte, check [8]byte) ([]byte, error) {
	env, err := k.seal(data, envelopeV1)
	if err != nil {
		return nil, err
	}
	body := env[:len(env)-sha256.Size]
	copy(body[16:24], check[:])
	m := hmac.New(sha256.New, k.mac)
	m.Write(body)
	return m.Sum(body), nil
}

func (k Key) seal(data []byte, version byte) ([]byte, error) {
	if k.enc == nil {
		return nil, errors.New("seal envelope: no key")
	}
	ctLen := (len(data)/aes.BlockSize + 1) * aes.BlockSize
	out := make([]byte, 40, 40+ctLen+sha256.Size)
	copy(out, EnvelopeMagic)
	out[4] = version
	copy(out[8:], k.hwCheck[:])
	if _, err := rand.Read(out[24:40]); err != nil {
		return nil, err
	}
	out = append(out, data...)
	pad := ctLen - len(data)
	out = append(out, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(k.enc)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCEncrypter(block, out[24:40]).CryptBlocks(out[40:], out[40:])
	m := hmac.New(sha256.New, k.mac)
	m.Write(out)
	return m.Sum(out), nil
}

// Open verifies and decrypts an envelope (version 2, or the old version 1).
// The errors wrap ErrWrongHardware, ErrWrongCredentials or ErrEnvelope.
func (k Key) Open(env []byte) ([]byte, error) {
	if k.enc == nil {
		return nil, errors.New("open envelope: no key")
	}
	if len(env) < 40+aes.BlockSize+sha256.Size || (len(env)-40-sha256.Size)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a valid envelope length", ErrEnvelope, len(env))
	}
	if string(env[:4]) != EnvelopeMagic || (env[4] != EnvelopeVersion && env[4] != envelopeV1) {
		return nil, fmt.Errorf("%w: bad magic or version", ErrEnvelope)
	}
	body, tag := env[:len(env)-sha256.Size], env[len(env)-sha256.Size:]
	m := hmac.New(sha256.New, k.mac)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil), tag) {
		if !hmac.Equal(env[8:16], k.hwCheck[:]) {
			return nil, ErrWrongHardware
		}
		return nil, fmt.Errorf("%w, or the %w", ErrWrongCredentials, ErrEnvelope)
	}
	block, err := aes.NewCipher(k.enc)
	if err != nil {
		return nil, err
	}
	pt := bytes.Clone(body[40:])
	cipher.NewCBCDecrypter(block, env[24:40]).CryptBlocks(pt, pt)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > aes.BlockSize {
		return nil, fmt.Errorf("%w: bad padding", ErrEnvelope)
	}
	for _, c := range pt[len(pt)-pad:] {
		if int(c) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrEnvelope)
		}
	}
	return pt[:len(pt)-pad], nil
}

// Version returns the format version of an envelope (0 when env is not one).
func Version(env []byte) int {
	if len(env) < 8 || string(env[:4]) != EnvelopeMagic {
		return 0
	}
	return int(env[4])
}
