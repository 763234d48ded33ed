package container

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
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/azaion/edge/sdk/model"
)

// Format constants of version 1.
const (
	// Magic starts every small part.
	Magic = "AZMC"
	// BigMagic starts every big part.
	BigMagic = "AZMB"
	// Version is the container format version this package writes and reads.
	Version = 1
	// KeySize is the size of the per-model random data key.
	KeySize = 32
	// BigPrefixSize is the size of the big part's prefix (magic, version, id, offset).
	BigPrefixSize = 32
	// DefaultSliceSize is how much ciphertext the small part carries by default.
	DefaultSliceSize = 16 << 10
	// MaxHeaderSize bounds the JSON header.
	MaxHeaderSize = 1 << 20
	// MaxPlaintextSize bounds a model (64 GiB).
	MaxPlaintextSize = 64 << 30
	// CipherName and MACName are the algorithm names recorded in the header.
	CipherName = "AES-256-CBC-PKCS7"
	MACName    = "HMAC-SHA256"

	fixedPrefix  = 12      // magic, version, reserved, header length
	decryptChunk = 4 << 20 // plaintext chunk decrypted by one worker
	tagSize      = sha256.Size
	ivSize       = aes.BlockSize

	infoEnc      = "azaion-model-container/v1 aes-256-cbc"
	infoMAC      = "azaion-model-container/v1 hmac-sha256"
	infoSmallMAC = "azaion-model-container/v1 small-part hmac-sha256"
)

// Errors wrapped by every failure, so callers can tell what went wrong.
var (
	// ErrFormat: the bytes are not a well-formed container part.
	ErrFormat = errors.New("malformed model container")
	// ErrTruncated: a part is shorter than its header says.
	ErrTruncated = errors.New("truncated")
	// ErrAuth: an HMAC did not verify (the part was modified or is corrupt).
	ErrAuth = errors.New("authentication failed")
	// ErrMismatch: the small and the big part belong to different models.
	ErrMismatch = errors.New("parts belong to different models")
	// ErrDigest: the decrypted model does not have the recorded SHA-256.
	ErrDigest = errors.New("plaintext digest mismatch")
)

// Header is the JSON header of a container. It is authenticated (by both
// tags) but not encrypted: it holds nothing secret.
type Header struct {
	// ID is a random 128-bit container id (32 hex digits), repeated in the big
	// part's prefix so that parts of different models are told apart.
	ID string `json:"id"`
	// Descriptor describes the model.
	Descriptor model.Descriptor `json:"descriptor"`
	// Cipher is CipherName.
	Cipher string `json:"cipher"`
	// MAC is MACName.
	MAC string `json:"mac"`
	// PlaintextSize is the model's size in bytes.
	PlaintextSize int64 `json:"plaintext_size"`
	// PlaintextSHA256 is the hex SHA-256 of the model.
	PlaintextSHA256 string `json:"plaintext_sha256"`
	// CiphertextSize is the size of the whole AES-CBC ciphertext (padded).
	CiphertextSize int64 `json:"ciphertext_size"`
	// SliceSize is how many ciphertext bytes the small part carries.
	SliceSize int64 `json:"slice_size"`
	// BigSize is the size of the big part (prefix + rest of the ciphertext).
	BigSize int64 `json:"big_size"`
}

func (h *Header) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: %s", ErrFormat, fmt.Sprintf(format, args...))
	}
	if id, err := hex.DecodeString(h.ID); err != nil || len(id) != 16 {
		return bad("id %q is not 32 hex digits", h.ID)
	}
	if h.Cipher != CipherName || h.MAC != MACName {
		return bad("unsupported cipher %q / mac %q", h.Cipher, h.MAC)
	}
	if h.PlaintextSize < 0 || h.PlaintextSize > MaxPlaintextSize {
		return bad("plaintext_size %d out of range", h.PlaintextSize)
	}
	if d, err := hex.DecodeString(h.PlaintextSHA256); err != nil || len(d) != sha256.Size {
		return bad("plaintext_sha256 is not 64 hex digits")
	}
	if want := (h.PlaintextSize/ivSize + 1) * ivSize; h.CiphertextSize != want {
		return bad("ciphertext_size %d, want %d for plaintext_size %d", h.CiphertextSize, want, h.PlaintextSize)
	}
	if h.SliceSize < 0 || h.SliceSize > h.CiphertextSize || h.SliceSize%ivSize != 0 {
		return bad("slice_size %d out of range", h.SliceSize)
	}
	if want := BigPrefixSize + h.CiphertextSize - h.SliceSize; h.BigSize != want {
		return bad("big_size %d, want %d", h.BigSize, want)
	}
	return nil
}

// SealOptions tune Seal. The zero value is the default.
type SealOptions struct {
	// SliceSize is how many ciphertext bytes go to the small part (rounded
	// down to 16; default DefaultSliceSize, at most the whole ciphertext).
	SliceSize int
	// Rand supplies the data key, the IV and the id (default crypto/rand).
	// Only tests set it.
	Rand io.Reader
}

// Sealed is the result of Seal.
type Sealed struct {
	// Header is the container header.
	Header Header
	// Small is the small part (for the REST API).
	Small []byte
	// Big is the big part (for the CDN).
	Big []byte
}

type keys struct {
	enc, mac, smallMAC []byte
}

func deriveKeys(dataKey []byte) (keys, error) {
	var k keys
	var err error
	if k.enc, err = hkdf.Key(sha256.New, dataKey, nil, infoEnc, 32); err != nil {
		return k, err
	}
	if k.mac, err = hkdf.Key(sha256.New, dataKey, nil, infoMAC, 32); err != nil {
		return k, err
	}
	k.smallMAC, err = hkdf.Key(sha256.New, dataKey, nil, infoSmallMAC, 32)
	return k, err
}

// Seal encrypts plaintext under a fresh random data key and splits the
// result into a small and a big part. desc is recorded in the header.
func Seal(plaintext []byte, desc model.Descriptor, opt SealOptions) (*Sealed, error) {
	if int64(len(plaintext)) > MaxPlaintextSize {
		return nil, fmt.Errorf("seal: model of %d bytes is over the limit", len(plaintext))
	}
	rnd := opt.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var secret [KeySize + ivSize + 16]byte
	if _, err := io.ReadFull(rnd, secret[:]); err != nil {
		return nil, fmt.Errorf("seal: random: %w", err)
	}
	dataKey, iv, id := secret[:KeySize], secret[KeySize:KeySize+ivSize], secret[KeySize+ivSize:]
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, fmt.Errorf("seal: derive keys: %w", err)
	}
	sum := sha256.Sum256(plaintext)
	ctSize := (len(plaintext)/ivSize + 1) * ivSize
	slice := opt.SliceSize
	if slice <= 0 {
		slice = DefaultSliceSize
	}
	slice = min(slice, ctSize) / ivSize * ivSize
	h := Header{
		ID:              hex.EncodeToString(id),
		Descriptor:      desc,
		Cipher:          CipherName,
		MAC:             MACName,
		PlaintextSize:   int64(len(plaintext)),
		PlaintextSHA256: hex.EncodeToString(sum[:]),
		CiphertextSize:  int64(ctSize),
		SliceSize:       int64(slice),
		BigSize:         int64(BigPrefixSize + ctSize - slice),
	}
	hj, err := json.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("seal: header: %w", err)
	}
	if len(hj) > MaxHeaderSize {
		return nil, fmt.Errorf("seal: header of %d bytes is over the limit", len(hj))
	}

	// Ciphertext: written straight into its final places (the small part's
	// slice and the big part's body) via one contiguous buffer.
	ct := make([]byte, ctSize)
	copy(ct, plaintext)
	pad := ctSize - len(plaintext)
	for i := len(plaintext); i < ctSize; i++ {
		ct[i] = byte(pad)
	}
	block, err := aes.NewCipher(k.enc)
	if err != nil {
		return nil, err
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)

	prefix := make([]byte, fixedPrefix, fixedPrefix+len(hj))
	copy(prefix, Magic)
	binary.BigEndian.PutUint16(prefix[4:], Version)
	binary.BigEndian.PutUint32(prefix[8:], uint32(len(hj)))
	prefix = append(prefix, hj...)

	full := hmac.New(sha256.New, k.mac)
	full.Write(prefix)
	full.Write(iv)
	full.Write(ct)
	small := hmac.New(sha256.New, k.smallMAC)
	small.Write(prefix)
	small.Write(iv)
	small.Write(ct[:slice])

	s := make([]byte, 0, len(prefix)+KeySize+ivSize+slice+2*tagSize)
	s = append(s, prefix...)
	s = append(s, dataKey...)
	s = append(s, iv...)
	s = append(s, ct[:slice]...)
	s = small.Sum(s)
	s = full.Sum(s)

	b := make([]byte, BigPrefixSize, BigPrefixSize+ctSize-slice)
	putBigPrefix(b, id, int64(slice))
	b = append(b, ct[slice:]...)
	return &Sealed{Header: h, Small: s, Big: b}, nil
}

func putBigPrefix(b, id []byte, offset int64) {
	copy(b, BigMagic)
	binary.BigEndian.PutUint16(b[4:], Version)
	copy(b[8:24], id)
	binary.BigEndian.PutUint64(b[24:], uint64(offset))
}

// Small is a parsed and authenticated small part.
type Small struct {
	// Header is the container header.
	Header Header
	prefix []byte
	keys   keys
	iv     []byte
	slice  []byte
	tag    []byte
	id     []byte
}

// ParseSmall parses a small part and verifies its own tag (HMAC over the
// header, IV and slice), so that a modified small part is reported as such
// before the big part is read. It never decrypts anything.
func ParseSmall(b []byte) (*Small, error) {
	if len(b) < fixedPrefix {
		return nil, fmt.Errorf("small part: %w: %d bytes", ErrTruncated, len(b))
	}
	if string(b[:4]) != Magic {
		return nil, fmt.Errorf("small part: %w: bad magic %q", ErrFormat, b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return nil, fmt.Errorf("small part: %w: version %d (this build reads %d)", ErrFormat, v, Version)
	}
	hlen := int(binary.BigEndian.Uint32(b[8:]))
	if hlen > MaxHeaderSize {
		return nil, fmt.Errorf("small part: %w: header of %d bytes", ErrFormat, hlen)
	}
	if len(b) < fixedPrefix+hlen {
		return nil, fmt.Errorf("small part: %w: %d bytes, header alone needs %d", ErrTruncated, len(b), fixedPrefix+hlen)
	}
	var h Header
	if err := json.Unmarshal(b[fixedPrefix:fixedPrefix+hlen], &h); err != nil {
		return nil, fmt.Errorf("small part: %w: header: %v", ErrFormat, err)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("small part: %w", err)
	}
	want := int64(fixedPrefix+hlen+KeySize+ivSize) + h.SliceSize + 2*tagSize
	if int64(len(b)) < want {
		return nil, fmt.Errorf("small part: %w: %d of %d bytes", ErrTruncated, len(b), want)
	}
	if int64(len(b)) > want {
		return nil, fmt.Errorf("small part: %w: %d bytes, header says %d", ErrFormat, len(b), want)
	}
	p := fixedPrefix + hlen
	s := &Small{Header: h, prefix: b[:p]}
	dataKey := b[p : p+KeySize]
	p += KeySize
	s.iv = b[p : p+ivSize]
	p += ivSize
	s.slice = b[p : p+int(h.SliceSize)]
	p += int(h.SliceSize)
	smallTag := b[p : p+tagSize]
	s.tag = b[p+tagSize:]
	s.id, _ = hex.DecodeString(h.ID)
	k, err := deriveKeys(dataKey)
	if err != nil {
		return nil, fmt.Errorf("small part: derive keys: %w", err)
	}
	s.keys = k
	m := hmac.New(sha256.New, k.smallMAC)
	m.Write(s.prefix)
	m.Write(s.iv)
	m.Write(s.slice)
	if !hmac.Equal(m.Sum(nil), smallTag) {
		return nil, fmt.Errorf("small part: %w: it was modified or is corrupt", ErrAuth)
	}
	return s, nil
}

// Opener receives the big part as a stream (it is an io.Writer: write the
// bytes in order as they arrive, e.g. while they are downloaded), keeps the
// ciphertext in memory and MACs it on the fly; Finish checks the tag and only
// then decrypts. An Opener is not safe for concurrent use.
type Opener struct {
	s      *Small
	mac    hash.Hash
	buf    []byte // whole ciphertext: slice, then the big part's body
	prefix [BigPrefixSize]byte
	n      int64 // big-part bytes written
	err    error
}

// NewOpener returns an Opener for the big part that belongs to s.
func (s *Small) NewOpener() *Opener {
	o := &Opener{s: s, mac: hmac.New(sha256.New, s.keys.mac)}
	o.buf = make([]byte, s.Header.SliceSize, s.Header.CiphertextSize)
	copy(o.buf, s.slice)
	o.mac.Write(s.prefix)
	o.mac.Write(s.iv)
	o.mac.Write(s.slice)
	return o
}

// Written returns how many big-part bytes were written so far.
func (o *Opener) Written() int64 { return o.n }

// Write consumes the next bytes of the big part. It fails as soon as the
// prefix shows the big part belongs to another model, or when more bytes
// arrive than the header announces.
func (o *Opener) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	total := len(p)
	if o.n < BigPrefixSize {
		k := copy(o.prefix[o.n:], p)
		o.n += int64(k)
		p = p[k:]
		if o.n == BigPrefixSize {
			if err := o.checkPrefix(); err != nil {
				o.err = err
				return 0, err
			}
		}
	}
	if o.n+int64(len(p)) > o.s.Header.BigSize {
		o.err = fmt.Errorf("big part: %w: longer than the %d bytes the header says", ErrFormat, o.s.Header.BigSize)
		return 0, o.err
	}
	if len(p) > 0 {
		o.mac.Write(p)
		o.buf = append(o.buf, p...)
		o.n += int64(len(p))
	}
	return total, nil
}

func (o *Opener) checkPrefix() error {
	b := o.prefix[:]
	if string(b[:4]) != BigMagic {
		return fmt.Errorf("big part: %w: bad magic %q", ErrFormat, b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return fmt.Errorf("big part: %w: version %d", ErrFormat, v)
	}
	if !bytes.Equal(b[8:24], o.s.id) {
		return fmt.Errorf("%w: small part is container %s (%s), big part is container %x",
			ErrMismatch, o.s.Header.ID, o.s.Header.Descriptor.ID(), b[8:24])
	}
	if off := int64(binary.BigEndian.Uint64(b[24:])); off != o.s.Header.SliceSize {
		return fmt.Errorf("big part: %w: offset %d, header says %d", ErrFormat, off, o.s.Header.SliceSize)
	}
	return nil
}

// Finish checks that the whole big part arrived and that the tag over header,
// IV and ciphertext verifies (constant-time), then decrypts in place and
// checks the padding, size and SHA-256 of the model. It returns the
// plaintext, which shares memory with the Opener; the Opener is spent.
func (o *Opener) Finish() ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	h := &o.s.Header
	if o.n != h.BigSize {
		return nil, fmt.Errorf("big part: %w: %d of %d bytes", ErrTruncated, o.n, h.BigSize)
	}
	if !hmac.Equal(o.mac.Sum(nil), o.s.tag) {
		return nil, fmt.Errorf("big part: %w: it was modified or is corrupt", ErrAuth)
	}
	block, err := aes.NewCipher(o.s.keys.enc)
	if err != nil {
		return nil, err
	}
	ct := o.buf
	o.buf, o.err = nil, errors.New("container: opener already finished")
	// Decrypt chunks in parallel (a CBC chunk needs only the ciphertext block
	// before it, saved first) and hash the plaintext in order as chunks finish.
	n := (len(ct) + decryptChunk - 1) / decryptChunk
	ivs := make([][ivSize]byte, n)
	copy(ivs[0][:], o.s.iv)
	for i := 1; i < n; i++ {
		copy(ivs[i][:], ct[i*decryptChunk-ivSize:i*decryptChunk])
	}
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c := ct[i*decryptChunk : min((i+1)*decryptChunk, len(ct))]
				cipher.NewCBCDecrypter(block, ivs[i][:]).CryptBlocks(c, c)
				close(done[i])
			}
		})
	}
	sum := sha256.New()
	pad := 0
	for i := range n {
		<-done[i]
		c := ct[i*decryptChunk : min((i+1)*decryptChunk, len(ct))]
		if i == n-1 {
			pad = int(ct[len(ct)-1])
			if pad < 1 || pad > ivSize || int64(len(ct)-pad) != h.PlaintextSize {
				wg.Wait()
				clear(ct)
				return nil, fmt.Errorf("%w: bad padding", ErrFormat)
			}
			for _, b := range ct[len(ct)-pad:] {
				if int(b) != pad {
					wg.Wait()
					clear(ct)
					return nil, fmt.Errorf("%w: bad padding", ErrFormat)
				}
			}
			c = c[:len(c)-pad]
		}
		sum.Write(c)
	}
	wg.Wait()
	if hex.EncodeToString(sum.Sum(nil)) != h.PlaintextSHA256 {
		clear(ct)
		return nil, ErrDigest
	}
	return ct[:len(ct)-pad], nil
}

// Open verifies and decrypts a model held in memory as its two parts.
func Open(small, big []byte) ([]byte, *Header, error) {
	s, err := ParseSmall(small)
	if err != nil {
		return nil, nil, err
	}
	o := s.NewOpener()
	if _, err := o.Write(big); err != nil {
		return nil, nil, err
	}
	pt, err := o.Finish()
	if err != nil {
		return nil, nil, err
	}
	return pt, &s.Header, nil
}
