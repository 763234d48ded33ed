// Package distribution publishes models (encrypt, split, upload the small part to
// the Azaion REST API and the big part to the CDN) and pulls them (fetch both
// parts, verify while downloading, keep them encrypted in the local store,
// decrypt in memory). It is imported only by the daemon and its CLI.
//
// Naming: model name:version has its small part at the API as resource
// "<name>@<version>.small" in folder "models", and its big part on the CDN at
// "models/<name>/<version>/big". The versions of a model are the folders
// under "models/<name>/" on the CDN; "latest" is the highest by
// modelstore.CompareVersions.
package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient"
	"github.com/azaion/edge/daemon/internal/cdn"
	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/container"
	"github.com/azaion/edge/sdk/model"
)

// Folder is the API folder of small parts.
const Folder = "models"

// SmallName is the API resource name of a small part.
func SmallName(name, version string) string { return name + "@" + version + ".small" }

// BigKey is the CDN key of a big part.
func BigKey(name, version string) string { return "models/" + name + "/" + version + "/big" }

// Service ties the API, the CDN and the local store together. Fields that an
// operation does not use may be nil (Publish needs API and CDNWriter; Pull
// needs API, CDN and Store; Load needs Store).
type Service struct {
	API       *apiclient.Client
	CDN       *cdn.Reader
	CDNWriter *cdn.Writer
	Store     *modelstore.Store
	// Keys gives the hardware-bound keys; its HardwareHash is sent to the API.
	Keys modelstore.Keyring
	Log  *slog.Logger
	// OnRequest, when set, sees the start offset of every CDN request (tests).
	OnRequest func(start int64)
	// MaxImportBytes bounds a model uploaded to POST /v1/models/import
	// (default DefaultMaxImportBytes).
	MaxImportBytes int64
	// ImportBodyTimeout bounds how long that upload may take (default 5m).
	ImportBodyTimeout time.Duration
	// Choose picks the artifact of a published bundle that this machine
	// serves (catalog.Catalog.Choose); nil refuses bundles.
	Choose func(arts []model.Artifact) (model.Artifact, string, error)

	locks     sync.Map   // model id -> *sync.Mutex: one pull or import of a version at a time
	importing sync.Mutex // one upload held in memory at a time
}

// DefaultMaxImportBytes is the default bound of an uploaded model.
const DefaultMaxImportBytes = 2 << 30

func (s *Service) lock(id string) (unlock func()) {
	m, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Publish encrypts and splits a model and uploads both parts: the big part
// to the CDN first, then the small part to the API.
func (s *Service) Publish(ctx context.Context, plaintext []byte, desc model.Descriptor) (*container.Header, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	if !model.ValidName(desc.Version) {
		return nil, fmt.Errorf("publish %s: a version is required", desc.Name)
	}
	if s.API == nil || s.CDNWriter == nil {
		return nil, errors.New("publish: the API and the CDN (write credentials) must be configured")
	}
	sealed, err := container.Seal(plaintext, desc, container.SealOptions{})
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", desc.ID(), err)
	}
	defer clear(sealed.Small)
	if err := s.CDNWriter.EnsureBucket(ctx); err != nil {
		return nil, fmt.Errorf("publish %s: %w", desc.ID(), err)
	}
	if err := s.CDNWriter.Upload(ctx, BigKey(desc.Name, desc.Version), bytes.NewReader(sealed.Big), int64(len(sealed.Big))); err != nil {
		return nil, fmt.Errorf("publish %s: big part: %w", desc.ID(), err)
	}
	if err := s.API.Upload(ctx, Folder, SmallName(desc.Name, desc.Version), sealed.Small); err != nil {
		return nil, fmt.Errorf("publish %s: small part: %w", desc.ID(), err)
	}
	s.log().Info("model published", "model", desc.ID(), "bytes", len(plaintext), "container", sealed.Header.ID)
	return &sealed.Header, nil
}

// Latest returns the highest version of name on the CDN.
func (s *Service) Latest(ctx context.Context, name string) (string, error) {
	vers, err := s.CDN.Prefixes(ctx, "models/"+name+"/")
	if err != nil {
		return "", err
	}
	best := ""
	for _, v := range vers {
		if model.ValidName(v) && (best == "" || modelstore.CompareVersions(v, best) > 0) {
			best = v
		}
	}
	if best == "" {
		return "", fmt.Errorf("model %s: no published version on the CDN", name)
	}
	return best, nil
}

// Pulled is the result of Pull.
type Pulled struct {
	// Manifest of the stored model.
	Manifest *modelstore.Manifest
	// Bytes is the plaintext model, in memory only.
	Bytes []byte
	// Cached is true when the version was already in the store.
	Cached bool
}

// Pull fetches name:version (version "" = latest on the CDN), verifies it
// while it downloads, stores the encrypted parts and returns the plaintext in
// memory. A version already in the store is loaded from it; a stored copy
// that fails verification is discarded (reported as api.PullDiscarded) and
// fetched again. An interrupted download resumes where it stopped (even in
// a later Pull, and with nothing left to fetch when every byte had arrived).
// On any verification error nothing is stored or returned, and the error
// says which part failed.
func (s *Service) Pull(ctx context.Context, name, version string, progress func(api.ModelPullProgress)) (*Pulled, error) {
	report := func(p api.ModelPullProgress) {
		if progress != nil {
			p.Name = name
			if p.Version == "" {
				p.Version = version
			}
			progress(p)
		}
	}
	if !model.ValidName(name) || (version != "" && !model.ValidName(version)) {
		return nil, fmt.Errorf("pull %s:%s: invalid model name or version", name, version)
	}
	if s.API == nil || s.CDN == nil || s.Store == nil {
		return nil, errors.New("pull: the API, the CDN and the state folder must be configured")
	}
	if version == "" {
		report(api.ModelPullProgress{Stage: api.PullResolving})
		v, err := s.Latest(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		version = v
	}
	id := name + ":" + version
	unlock := s.lock(id)
	defer unlock()
	if _, err := s.Store.Manifest(name, version); err == nil {
		m, err := s.Store.Load(name, version, s.Keys)
		if err == nil {
			report(api.ModelPullProgress{Stage: api.PullCached})
			return &Pulled{Manifest: &m.Manifest, Bytes: m.Bytes, Cached: true}, nil
		}
		if !errors.Is(err, modelstore.ErrDamaged) {
			return nil, err
		}
		// A copy that fails verification never loads again: fetch it anew.
		s.log().Warn("the stored copy failed verification; discarding it and pulling again", "model", id, "error", err)
		report(api.ModelPullProgress{Stage: api.PullDiscarded, Error: err.Error()})
		if err := s.Store.Remove(name, version); err != nil {
			return nil, fmt.Errorf("pull %s: discard the damaged stored copy: %w", id, err)
		}
	}

	key, err := s.Keys.Key(modelstore.KeyAccount)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", id, err)
	}
	// A version published as a bundle has one container per artifact: take
	// the one that fits this machine's backends, and nothing of the others.
	smallName, bigKey, file := SmallName(name, version), BigKey(name, version), ""
	if b, err := s.fetchBundle(ctx, name, version, key); err != nil {
		return nil, fmt.Errorf("pull %s: %w", id, err)
	} else if b != nil {
		if s.Choose == nil {
			return nil, fmt.Errorf("pull %s: a bundle, and no artifact chooser is configured", id)
		}
		art, backendName, err := s.Choose(b.Targets())
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", id, err)
		}
		file = art.File
		smallName, bigKey = ArtifactSmallName(name, version, file), ArtifactBigKey(name, version, file)
		s.log().Info("pulling the artifact for this machine", "model", id, "artifact", file, "backend", backendName,
			"bundle", len(b.Artifacts))
	}
	report(api.ModelPullProgress{Stage: api.PullSmall})
	env, err := s.API.Get(ctx, Folder, smallName, s.Keys.HardwareHash)
	if err != nil {
		return nil, fmt.Errorf("pull %s: small part: %w", id, err)
	}
	small, err := key.Open(env)
	if err != nil {
		return nil, fmt.Errorf("pull %s: small part from the API: %w", id, err)
	}
	defer clear(small)
	if keys.Version(env) < keys.EnvelopeVersion { // store it in the current format
		if env, err = key.Seal(small); err != nil {
			return nil, fmt.Errorf("pull %s: %w", id, err)
		}
	}
	sp, err := container.ParseSmall(small)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", id, err)
	}
	if d := sp.Header.Descriptor; d.Name != name || d.Version != version {
		return nil, fmt.Errorf("pull %s: %w: the API's small part is model %s", id, container.ErrMismatch, d.ID())
	}
	if d := sp.Header.Descriptor; file != "" && (len(d.Artifacts) != 1 || d.Artifacts[0].File != file) {
		return nil, fmt.Errorf("pull %s: %w: the API's small part is not the artifact %s", id, container.ErrMismatch, file)
	}
	report(api.ModelPullProgress{Stage: api.PullSmall, Completed: int64(len(env)), Total: int64(len(env))})

	w, err := s.Store.Create(name, version)
	if err != nil {
		return nil, err
	}
	o := sp.NewOpener()
	total := sp.Header.BigSize
	if w.Offset() > 0 {
		// Resume: feed what an earlier attempt stored through the verifier
		// (all of it when only the commit was missing: then nothing is
		// fetched).
		_, err := io.Copy(o, w.Partial())
		if err == nil && w.Offset() > total {
			err = fmt.Errorf("%d bytes, the big part has %d", w.Offset(), total)
		}
		if err != nil {
			s.log().Warn("discarding a partial download that does not match", "model", id, "error", err)
			if err := w.Restart(); err != nil {
				w.Abort(false)
				return nil, err
			}
			o = sp.NewOpener()
		}
	}
	// Network reads on this goroutine; HMAC and the store write on the pipe's.
	tDownload := time.Now()
	pipe := newPipeWriter(io.MultiWriter(o, w.Big()))
	if w.Offset() < total {
		// The CDN object's size is not checked against the header's: the
		// verifier says what is wrong with a different object.
		_, err = s.CDN.Download(ctx, bigKey, pipe, cdn.DownloadOptions{
			Offset:    w.Offset(),
			OnRequest: s.OnRequest,
			Progress: func(done, _ int64) {
				report(api.ModelPullProgress{Stage: api.PullBig, Completed: done, Total: total})
			},
		})
	}
	if perr := pipe.Close(); err == nil && perr != nil {
		err = fmt.Errorf("download %s: %w", bigKey, perr)
	}
	if err != nil {
		var verr error
		if errors.Is(err, container.ErrMismatch) || errors.Is(err, container.ErrFormat) {
			verr = err
		}
		w.Abort(verr == nil) // keep what arrived (a later pull resumes) unless it is wrong
		if verr == nil && errors.Is(err, cdn.ErrNotFound) {
			return nil, fmt.Errorf("pull %s: big part: %w", id, err)
		}
		return nil, fmt.Errorf("pull %s: %w", id, err)
	}
	report(api.ModelPullProgress{Stage: api.PullVerifying})
	tVerify := time.Now()
	synced := make(chan error, 1)
	go func() { synced <- w.Sync() }() // flush the big part while decrypting
	pt, err := o.Finish()
	if serr := <-synced; err == nil && serr != nil {
		clear(pt)
		err = serr
	}
	if err != nil {
		w.Abort(false)
		return nil, fmt.Errorf("pull %s: %w", id, err)
	}
	tStore := time.Now()
	h := sp.Header
	m := modelstore.Manifest{Descriptor: h.Descriptor, ContainerID: h.ID, PlaintextSize: h.PlaintextSize,
		PlaintextSHA256: h.PlaintextSHA256, Key: modelstore.KeyAccount, Source: "pull"}
	if err := w.Commit(env, m); err != nil {
		clear(pt)
		w.Abort(false)
		return nil, err
	}
	mf, err := s.Store.Manifest(name, version)
	if err != nil {
		clear(pt)
		return nil, err
	}
	report(api.ModelPullProgress{Stage: api.PullStored})
	s.log().Info("model pulled", "model", id, "bytes", len(pt), "download", tVerify.Sub(tDownload).Round(time.Millisecond),
		"verify", tStore.Sub(tVerify).Round(time.Millisecond), "store", time.Since(tStore).Round(time.Millisecond))
	return &Pulled{Manifest: mf, Bytes: pt}, nil
}

// Import stores a plaintext model in the local store, sealed with this
// machine's local key (modelstore.Store.Import: staged, then swapped into
// place), waiting for a pull or import of the same version to finish.
func (s *Service) Import(plaintext []byte, desc model.Descriptor) (*modelstore.Manifest, error) {
	if s.Store == nil {
		return nil, errors.New("import: the state folder must be configured")
	}
	if desc.Version == "" {
		return nil, fmt.Errorf("import %s: a version is required", desc.Name)
	}
	unlock := s.lock(desc.Name + ":" + desc.Version)
	defer unlock()
	m, err := s.Store.Import(plaintext, desc, s.Keys, modelstore.KeyLocal)
	if err != nil {
		return nil, err
	}
	s.log().Info("model imported", "model", m.ID(), "bytes", m.PlaintextSize)
	return m, nil
}

// ParseRef splits "name[:version]".
func ParseRef(ref string) (name, version string, err error) {
	name, version, _ = strings.Cut(ref, ":")
	if !model.ValidName(name) || (version != "" && !model.ValidName(version)) {
		return "", "", fmt.Errorf("model %q: want NAME or NAME:VERSION (letters, digits, '.', '_', '-')", ref)
	}
	return name, version, nil
}
