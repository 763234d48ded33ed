// Package container is the encrypted, split model container of Azaion Edge:
// how a model is encrypted, authenticated and cut into a small part (served
// by the Azaion REST API) and a big part (served by the S3 CDN). It is used by
// the publisher (encrypt + split) and by the daemon (verify + decrypt in
// memory), and may be imported by any program. It never writes files.
//
// # Keys
//
// Each model version gets a fresh random 256-bit data key K. Three keys are
// derived from it with HKDF-SHA256 (RFC 5869, empty salt, 32-byte output):
//
//	enc       = HKDF(K, info "azaion-model-container/v1 aes-256-cbc")
//	mac       = HKDF(K, info "azaion-model-container/v1 hmac-sha256")
//	small-mac = HKDF(K, info "azaion-model-container/v1 small-part hmac-sha256")
//
// The model is encrypted with AES-256-CBC under enc with a random 16-byte IV
// and PKCS#7 padding (always 1..16 bytes), giving the ciphertext C.
//
// # Small part (version 1; integers big-endian)
//
//	off   size  field
//	0     4     magic "AZMC"
//	4     2     version = 1
//	6     2     reserved, 0
//	8     4     H = length of the header JSON (at most 1 MiB)
//	12    H     header JSON (see Header): id, descriptor, cipher, mac,
//	            plaintext_size, plaintext_sha256, ciphertext_size,
//	            slice_size (S), big_size
//	12+H  32    key material: the data key K
//	+32   16    IV
//	+48   S     C[0:S], the first slice of the ciphertext (S is a multiple of 16)
//	+S    32    small tag = HMAC-SHA256(small-mac, bytes[0:12+H] || IV || C[0:S])
//	+32   32    tag       = HMAC-SHA256(mac,       bytes[0:12+H] || IV || C)
//
// The small part carries the key material, so it is never stored or sent in
// the clear: the REST API serves it only inside a hardware-bound envelope
// (see daemon/internal/keys), and the local store keeps it that way.
//
// # Big part
//
//	off   size  field
//	0     4     magic "AZMB"
//	4     2     version = 1
//	6     2     reserved, 0
//	8     16    id (the header's id as 16 bytes)
//	24    8     offset of this ciphertext in C (= S)
//	32    ...   C[S:]
//
// # Opening
//
// The reader parses the small part and verifies the small tag (a modified
// small part is reported as such), checks the big part's prefix against the
// id (parts of different models are reported as such), streams the big part
// through HMAC (Opener is an io.Writer, so it verifies while downloading),
// compares the tag in constant time, and only then decrypts, checks the
// padding, the size and the SHA-256 of the plaintext. Every failure wraps one
// of ErrFormat, ErrTruncated, ErrAuth, ErrMismatch or ErrDigest, and its
// message starts with the part that failed ("small part: ..." / "big part: ...").
//
// Neither part alone yields the model: the big part lacks the key and the
// first slice; the small part decrypts to at most its first S bytes
// (DefaultSliceSize, 16 KiB), which is why it is always kept wrapped.
//
// # Test vector
//
// Data key 00..1f, IV 20..2f, id 30..3f (the first 64 bytes of the sequence
// 0, 1, 2, ...), slice 16, descriptor {"name":"vector","version":"1",
// "format":"onnx"}, plaintext "Azaion test vector: this is not a model."
// (40 bytes) give the header
//
//	{"id":"303132333435363738393a3b3c3d3e3f","descriptor":{"name":"vector","version":"1","format":"onnx"},
//	"cipher":"AES-256-CBC-PKCS7","mac":"HMAC-SHA256","plaintext_size":40,
//	"plaintext_sha256":"dbb56dfd27220dfd5756c465262622226d74795a698ffdc977ccd604b71fc616",
//	"ciphertext_size":48,"slice_size":16,"big_size":64}
//
// (one line, no spaces) and, after the header, the small part ends with
//
//	key    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//	iv     202122232425262728292a2b2c2d2e2f
//	slice  a55d2acca3a36c17529945a1e0336d52
//	stag   0abaa84db1383ca7ab2a24a073afdaab3563f0afc439edd9bfa10a223748c64d
//	tag    d40c19b36856413577d939af8b54847eef3feacba7d615328ae5cf6bafec5d8b
//
// and the big part is
//
//	415a4d4200010000 303132333435363738393a3b3c3d3e3f 0000000000000010
//	5a3b3bdb0ca9d0b53676a088a7baec090dc923b77043f101cf15f50a76cb773d
//
// The full hex of both parts is in testdata/vector1.{small,big}.hex; the
// vector was checked against Python's cryptography package.
package container
