// Package modelstore is the daemon's local store of encrypted models:
// <state>/models/<name>/<version>/ holds manifest.json, small.enc (the small
// part inside its hardware-bound envelope, as the API served it or as import
// sealed it) and big.bin (the big part, as downloaded). Plaintext models are
// never written: Load verifies and decrypts in memory and hands the bytes to
// the caller. It is imported only by the daemon.
//
// A version folder without manifest.json is incomplete (a download in
// progress or interrupted: big.part holds what arrived so far, and a later
// pull resumes from it). Every file is written to a temporary name, synced
// and renamed; the manifest is written last. Import builds the whole version
// folder under <state>/models/~staging/ and renames it into place (swapping
// it with the version it replaces), and Remove renames a version out before
// deleting it, so a crash never leaves a half-written or half-removed
// version; Load reads all of a version's files from one folder handle.
package modelstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/container"
	"github.com/azaion/edge/sdk/model"
)

// File names inside a version folder.
const (
	ManifestFile = "manifest.json"
	SmallFile    = "small.enc"
	BigFile      = "big.bin"
	PartialFile  = "big.part"
)

// Key kinds recorded in a manifest.
const (
	// KeyAccount: the small part is sealed for the Azaion account and this machine.
	KeyAccount = "account"
	// KeyLocal: the small part is sealed with this machine's local key (import).
	KeyLocal = "local"
)

// ErrNotFound: the store has no such model.
var ErrNotFound = errors.New("model not in the local store")

// ErrDamaged marks a Load error caused by the stored files themselves (a
// part missing, modified, truncated or swapped, or sealed for another
// machine or other credentials), as opposed to a missing key: that copy
// can never load again and should be discarded and fetched anew.
var ErrDamaged = errors.New("stored copy is damaged")

// damaged adds ErrDamaged to err's chain without changing its message.
type damaged struct{ err error }

func (e damaged) Error() string   { return e.err.Error() }
func (e damaged) Unwrap() []error { return []error{e.err, ErrDamaged} }

// Manifest describes a stored model. It holds nothing secret.
type Manifest struct {
	// Name and Version identify the model.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Descriptor is the model descriptor from the container header.
	Descriptor model.Descriptor `json:"descriptor"`
	// ContainerID is the container's id.
	ContainerID string `json:"container_id"`
	// PlaintextSize and PlaintextSHA256 describe the decrypted model.
	PlaintextSize   int64  `json:"plaintext_size"`
	PlaintextSHA256 string `json:"plaintext_sha256"`
	// SmallSize and BigSize are the sizes of the stored parts.
	SmallSize int64 `json:"small_size"`
	BigSize   int64 `json:"big_size"`
	// Key says which key seals the small part: "account" or "local".
	Key string `json:"key"`
	// Source is "pull" or "import".
	Source string `json:"source"`
	// Stored is when the model was stored.
	Stored time.Time `json:"stored"`
}

// ID returns "name:version".
func (m *Manifest) ID() string { return m.Name + ":" + m.Version }

// Keyring gives the hardware-bound key for a manifest's key kind.
type Keyring struct {
	// Account are the Azaion credentials (may be empty when not configured).
	Account keys.Credentials
	// LocalKeyFile is the local key (keys.LocalCredentials).
	LocalKeyFile string
	// HardwareHash is this machine's hardware hash.
	HardwareHash string
}

// Key returns the hardware-bound key of kind (KeyAccount or KeyLocal).
func (k Keyring) Key(kind string) (keys.Key, error) {
	switch kind {
	case KeyAccount:
		if k.Account.Email == "" || k.Account.Password == "" {
			return keys.Key{}, errors.New("no Azaion credentials configured (api.email and AZAION_API_PASSWORD or api.password_file)")
		}
		return keys.Derive(k.Account, k.HardwareHash)
	case KeyLocal:
		c, err := keys.LocalCredentials(k.LocalKeyFile)
		if err != nil {
			return keys.Key{}, err
		}
		return keys.Derive(c, k.HardwareHash)
	}
	return keys.Key{}, fmt.Errorf("unknown key kind %q", kind)
}

// Store is a local model store rooted at a folder.
type Store struct {
	root string
}

// stagingDir is the folder under the store's root where Import builds a
// version and Remove puts one before deleting it. Its name is not a valid
// model name, so it never shows as a model.
const stagingDir = "~staging"

// staleAfter is how old a staging entry must be before Open removes it
// (what a crash left behind; a younger one may belong to an import running
// in another process).
const staleAfter = time.Hour

// Open returns the store at root (<state>/models), creating it (mode 0700),
// and removes what a crash left in its staging folder.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	if ents, err := os.ReadDir(filepath.Join(root, stagingDir)); err == nil {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAfter {
				os.RemoveAll(filepath.Join(root, stagingDir, e.Name()))
			}
		}
	}
	return &Store{root: root}, nil
}

// stage makes a fresh folder in the staging folder (created on first use).
func (s *Store) stage(prefix string) (string, error) {
	if err := os.MkdirAll(filepath.Join(s.root, stagingDir), 0o700); err != nil {
		return "", fmt.Errorf("model store: %w", err)
	}
	d, err := os.MkdirTemp(filepath.Join(s.root, stagingDir), prefix)
	if err != nil {
		return "", fmt.Errorf("model store: %w", err)
	}
	return d, nil
}

// testHook, when set by a test, runs between the steps of Import (after
// "staged": the new version is complete in the staging folder; after
// "swapped": it is in place) and Remove ("moved"); an error aborts there.
var testHook func(step string) error

func hook(step string) error {
	if testHook != nil {
		return testHook(step)
	}
	return nil
}

// Root returns the store's folder.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name, version string) (string, error) {
	if !model.ValidName(name) || !model.ValidName(version) {
		return "", fmt.Errorf("model %q version %q: want letters, digits, '.', '_' or '-'", name, version)
	}
	return filepath.Join(s.root, name, version), nil
}

// Manifest returns the manifest of a stored model (ErrNotFound when absent).
func (s *Store) Manifest(name, version string) (*Manifest, error) {
	d, err := s.dir(name, version)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(d, ManifestFile))
	return parseManifest(b, err, name, version)
}

// parseManifest decodes a manifest read (with error readErr) for name:version.
func parseManifest(b []byte, readErr error, name, version string) (*Manifest, error) {
	if errors.Is(readErr, os.ErrNotExist) {
		return nil, fmt.Errorf("%s:%s: %w", name, version, ErrNotFound)
	}
	if readErr != nil {
		return nil, readErr
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s:%s: %w", name, version, err)
	}
	if m.Name != name || m.Version != version {
		return nil, fmt.Errorf("manifest of %s:%s names %s", name, version, m.ID())
	}
	return &m, nil
}

// List returns the manifests of every complete model, sorted by name and version.
func (s *Store) List() ([]Manifest, error) {
	var out []Manifest
	names, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	for _, n := range names {
		if !n.IsDir() || !model.ValidName(n.Name()) {
			continue
		}
		vers, err := os.ReadDir(filepath.Join(s.root, n.Name()))
		if err != nil {
			continue
		}
		for _, v := range vers {
			if m, err := s.Manifest(n.Name(), v.Name()); err == nil {
				out = append(out, *m)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return CompareVersions(out[i].Version, out[j].Version) < 0
	})
	return out, nil
}

// Latest returns the highest stored version of name (ErrNotFound when none).
func (s *Store) Latest(name string) (string, error) {
	all, err := s.List()
	if err != nil {
		return "", err
	}
	best := ""
	for _, m := range all {
		if m.Name == name && (best == "" || CompareVersions(m.Version, best) > 0) {
			best = m.Version
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return best, nil
}

// Remove deletes a stored model (complete or partial). The version folder
// is first renamed out of place, so that a crash never leaves part of it.
func (s *Store) Remove(name, version string) error {
	d, err := s.dir(name, version)
	if err != nil {
		return err
	}
	if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	tmp, err := s.stage("removed-" + name + "-" + version + "-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gone := filepath.Join(tmp, "v")
	if err := os.Rename(d, gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("model store: remove %s:%s: %w", name, version, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(d)); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	if err := hook("moved"); err != nil {
		return err
	}
	os.Remove(filepath.Dir(d)) // the name folder, when now empty
	return nil
}

// Model is a decrypted model, in memory only.
type Model struct {
	Manifest
	// Bytes is the plaintext model.
	Bytes []byte
}

// Reader returns a reader over the plaintext.
func (m *Model) Reader() io.Reader { return bytes.NewReader(m.Bytes) }

// Load verifies and decrypts a stored model in memory with the key of its
// manifest's kind from kr. Errors say which part failed and why (another
// machine, other credentials, a modified or truncated part, parts of
// different models); those caused by the stored files carry ErrDamaged.
func (s *Store) Load(name, version string, kr Keyring) (*Model, error) {
	d, err := s.dir(name, version)
	if err != nil {
		return nil, err
	}
	// One handle on the folder: a version swapped in meanwhile (Import)
	// does not mix its files with this one's.
	root, err := os.OpenRoot(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s:%s: %w", name, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	defer root.Close()
	b, err := root.ReadFile(ManifestFile)
	m, err := parseManifest(b, err, name, version)
	if err != nil {
		return nil, err
	}
	key, err := kr.Key(m.Key)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.ID(), err)
	}
	md, err := load(root, filepath.Join(d, SmallFile), m, key)
	if err != nil && !errors.Is(err, errUpgrade) {
		return nil, damaged{err}
	}
	return md, err
}

// errUpgrade marks a failure to rewrite an old envelope (not damage).
var errUpgrade = errors.New("upgrade the small part's envelope")

// load verifies and decrypts the version in root; smallPath is where its
// envelope is rewritten when it has the old format.
func load(root *os.Root, smallPath string, m *Manifest, key keys.Key) (*Model, error) {
	env, err := root.ReadFile(SmallFile)
	if err != nil {
		return nil, fmt.Errorf("load %s: small part: %w", m.ID(), err)
	}
	small, err := key.Open(env)
	if err != nil {
		return nil, fmt.Errorf("load %s: small part: %w", m.ID(), err)
	}
	defer clear(small)
	if keys.Version(env) < keys.EnvelopeVersion {
		// An old envelope carries a credential check that allows offline
		// password guessing: seal the small part anew in the current format.
		if err := upgradeEnvelope(smallPath, key, small); err != nil {
			return nil, fmt.Errorf("load %s: %w: %w", m.ID(), errUpgrade, err)
		}
	}
	sp, err := container.ParseSmall(small)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.ID(), err)
	}
	if sp.Header.ID != m.ContainerID {
		return nil, fmt.Errorf("load %s: %w: the small part is container %s (%s), the manifest says %s",
			m.ID(), container.ErrMismatch, sp.Header.ID, sp.Header.Descriptor.ID(), m.ContainerID)
	}
	f, err := root.Open(BigFile)
	if err != nil {
		return nil, fmt.Errorf("load %s: big part: %w", m.ID(), err)
	}
	defer f.Close()
	o := sp.NewOpener()
	if _, err := io.Copy(o, f); err != nil {
		return nil, fmt.Errorf("load %s: %w", m.ID(), err)
	}
	pt, err := o.Finish()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.ID(), err)
	}
	return &Model{Manifest: *m, Bytes: pt}, nil
}

// upgradeEnvelope replaces the envelope at path with one of the current
// format sealing small with key (temporary file, fsync, rename).
func upgradeEnvelope(path string, key keys.Key, small []byte) error {
	env, err := key.Seal(small)
	if err != nil {
		return err
	}
	return writeFile(path, env)
}

// Writer stores one model version. Create it with Store.Create; finish with
// Commit, or Abort.
type Writer struct {
	s             *Store
	name, version string
	dir           string
	big           *os.File
	offset        int64
}

// Create starts storing name:version. When an earlier download of the same
// version was interrupted, the bytes it got stay in big.part: Offset says how
// many, and Partial reads them back. An existing complete version is
// replaced only by Commit.
func (s *Store) Create(name, version string) (*Writer, error) {
	d, err := s.dir(name, version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d, PartialFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{s: s, name: name, version: version, dir: d, big: f, offset: off}, nil
}

// Offset returns how many big-part bytes an earlier attempt left.
func (w *Writer) Offset() int64 { return w.offset }

// Partial returns a reader over the big-part bytes left by an earlier attempt.
func (w *Writer) Partial() io.Reader {
	return io.NewSectionReader(w.big, 0, w.offset)
}

// Big returns the writer that appends to the big part.
func (w *Writer) Big() io.Writer { return w.big }

// Sync flushes the big part to disk (Commit does it too; calling it earlier
// lets it overlap with other work).
func (w *Writer) Sync() error {
	if err := w.big.Sync(); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	return nil
}

// Restart drops what an earlier attempt left.
func (w *Writer) Restart() error {
	if err := w.big.Truncate(0); err != nil {
		return err
	}
	_, err := w.big.Seek(0, io.SeekStart)
	w.offset = 0
	return err
}

// Commit stores the small part envelope and the manifest and makes the
// version visible. m's Name, Version and sizes are filled in.
func (w *Writer) Commit(smallEnvelope []byte, m Manifest) error {
	defer w.big.Close()
	if err := w.big.Sync(); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	st, err := w.big.Stat()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(w.dir, SmallFile), smallEnvelope); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(w.dir, PartialFile), filepath.Join(w.dir, BigFile)); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	m.Name, m.Version = w.name, w.version
	m.SmallSize, m.BigSize = int64(len(smallEnvelope)), st.Size()
	if m.Stored.IsZero() {
		m.Stored = time.Now().UTC()
	}
	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(w.dir, ManifestFile), append(b, '\n')); err != nil {
		return err
	}
	return atomicfile.SyncDir(w.dir)
}

// Abort closes the writer. With keepPartial the bytes downloaded so far stay
// for a later resume; otherwise the incomplete version is removed (a
// complete one already stored is left alone).
func (w *Writer) Abort(keepPartial bool) {
	w.big.Close()
	if keepPartial {
		return
	}
	os.Remove(filepath.Join(w.dir, PartialFile))
	if _, err := os.Stat(filepath.Join(w.dir, ManifestFile)); errors.Is(err, os.ErrNotExist) {
		os.RemoveAll(w.dir)
		os.Remove(filepath.Dir(w.dir)) // the name folder, when now empty
	}
}

// writeFile writes data to path atomically, readable by the owner only.
func writeFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("model store: %w", err)
	}
	return nil
}

// CompareVersions orders versions: dot/dash-separated numeric fields compare
// as numbers, others as strings ("1.10" > "1.9", "2026-11-28" > "2026-02-01").
func CompareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		if isNum(x) && isNum(y) {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				if len(x) < len(y) {
					return -1
				}
				return 1
			}
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	switch {
	case len(pa) < len(pb):
		return -1
	case len(pa) > len(pb):
		return 1
	}
	return strings.Compare(a, b)
}

func isNum(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Import encrypts a plaintext model like a published one and stores it, its
// small part sealed with the key of kind (KeyLocal, or KeyAccount when the
// model should open only with the Azaion credentials). The plaintext is
// never written. desc.Name and desc.Version name the stored version.
//
// The version is built complete in the staging folder and renamed into
// place in one step (exchanged with the version it replaces, which is then
// deleted): at any moment the store holds either the old version or the
// new one, whole.
func (s *Store) Import(plaintext []byte, desc model.Descriptor, kr Keyring, kind string) (*Manifest, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	if !model.ValidName(desc.Version) {
		return nil, fmt.Errorf("import %s: a version is required", desc.Name)
	}
	d, err := s.dir(desc.Name, desc.Version)
	if err != nil {
		return nil, err
	}
	key, err := kr.Key(kind)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	sealed, err := container.Seal(plaintext, desc, container.SealOptions{})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	env, err := key.Seal(sealed.Small)
	clear(sealed.Small)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	tmp, err := s.stage("import-" + desc.Name + "-" + desc.Version + "-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // the staged version on failure, the replaced one on success
	stage := filepath.Join(tmp, "v")
	if err := os.Mkdir(stage, 0o700); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	h := sealed.Header
	m := Manifest{Name: desc.Name, Version: desc.Version, Descriptor: desc, ContainerID: h.ID,
		PlaintextSize: h.PlaintextSize, PlaintextSHA256: h.PlaintextSHA256, Key: kind, Source: "import",
		SmallSize: int64(len(env)), BigSize: int64(len(sealed.Big)), Stored: time.Now().UTC()}
	mb, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{SmallFile, env}, {BigFile, sealed.Big}, {ManifestFile, append(mb, '\n')}} {
		if err := writeFile(filepath.Join(stage, f.name), f.data); err != nil {
			return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
		}
	}
	if err := atomicfile.SyncDir(stage); err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	if err := hook("staged"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(d), 0o700); err != nil {
		return nil, fmt.Errorf("model store: %w", err)
	}
	if err := swapInto(stage, d); err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(d)); err != nil {
		return nil, fmt.Errorf("import %s: %w", desc.ID(), err)
	}
	if err := hook("swapped"); err != nil {
		return nil, err
	}
	return s.Manifest(desc.Name, desc.Version)
}

// swapInto puts the folder stage at dst in one step: a rename when dst does
// not exist, else an exchange of the two (stage then holds what dst held).
func swapInto(stage, dst string) error {
	err := os.Rename(stage, dst)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(dst); serr != nil {
		return err
	}
	return exchange(stage, dst)
}

// exchangeByRenames swaps a and b with three renames through a temporary
// name: b is absent for a moment, never half-written.
func exchangeByRenames(a, b string) error {
	old := a + ".old"
	if err := os.Rename(b, old); err != nil {
		return err
	}
	if err := os.Rename(a, b); err != nil {
		os.Rename(old, b)
		return err
	}
	return os.Rename(old, a)
}
