// Package outputs keeps the files the daemon makes for clients to fetch
// (annotated videos): each under an opaque random id in one folder, written
// by a plugin to a part file, committed by rename, served by
// GET /v1/outputs/{id} and removed after a time to live (or by
// DELETE /v1/outputs/{id}). It is imported only by the daemon.
package outputs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/azaion/edge/internal/atomicfile"
)

// ErrNotFound: no output by that id (never made, or expired).
var ErrNotFound = errors.New("no such output")

// ext is the extension of every output (annotated MP4 videos).
const ext = ".mp4"

// partSuffix marks a file a plugin is still writing.
const partSuffix = ".part" + ext

// Store is the outputs folder.
type Store struct {
	dir string
	ttl time.Duration
	log *slog.Logger

	mu      sync.Mutex
	expires map[string]time.Time // committed outputs by id
	now     func() time.Time
}

// New opens (creating) the outputs folder dir. Outputs left by an earlier
// run expire ttl after they were written; part files are removed.
func New(dir string, ttl time.Duration, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	s := &Store{dir: dir, ttl: ttl, log: log, expires: map[string]time.Time{}, now: time.Now}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		id, ok := strings.CutSuffix(name, ext)
		if !ok || strings.HasSuffix(name, partSuffix) || !e.Type().IsRegular() {
			_ = os.Remove(p)
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.expires[id] = info.ModTime().Add(ttl)
	}
	s.expire()
	return s, nil
}

// Output describes a committed output.
type Output struct {
	ID      string
	Path    string
	Size    int64
	Expires time.Time
}

// Reserve returns a new id and the path of the part file a plugin writes it
// to; Commit or Discard it afterwards.
func (s *Store) Reserve() (id, part string) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id = hex.EncodeToString(b[:])
	return id, filepath.Join(s.dir, id+partSuffix)
}

// Commit makes a written part file durable and fetchable under its id.
func (s *Store) Commit(id string) (Output, error) {
	part := filepath.Join(s.dir, id+partSuffix)
	final := filepath.Join(s.dir, id+ext)
	f, err := os.Open(part)
	if err != nil {
		return Output{}, fmt.Errorf("outputs: %w", err)
	}
	err = f.Sync()
	st, serr := f.Stat()
	f.Close()
	if err != nil || serr != nil {
		_ = os.Remove(part)
		return Output{}, fmt.Errorf("outputs: sync %s: %w", part, errors.Join(err, serr))
	}
	if err := os.Rename(part, final); err != nil {
		_ = os.Remove(part)
		return Output{}, fmt.Errorf("outputs: %w", err)
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		s.log.Warn("outputs: sync folder", "error", err)
	}
	s.mu.Lock()
	exp := s.now().Add(s.ttl)
	s.expires[id] = exp
	s.mu.Unlock()
	return Output{ID: id, Path: final, Size: st.Size(), Expires: exp}, nil
}

// Discard removes a part file that will not be committed.
func (s *Store) Discard(id string) {
	_ = os.Remove(filepath.Join(s.dir, id+partSuffix))
}

// Get returns a committed output that has not expired.
func (s *Store) Get(id string) (Output, error) {
	s.mu.Lock()
	exp, ok := s.expires[id]
	s.mu.Unlock()
	if !ok || !s.now().Before(exp) {
		return Output{}, fmt.Errorf("%w %q (outputs are kept for %s)", ErrNotFound, id, s.ttl)
	}
	p := filepath.Join(s.dir, id+ext)
	st, err := os.Stat(p)
	if err != nil {
		return Output{}, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	return Output{ID: id, Path: p, Size: st.Size(), Expires: exp}, nil
}

// Remove deletes an output now.
func (s *Store) Remove(id string) error {
	s.mu.Lock()
	_, ok := s.expires[id]
	delete(s.expires, id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrNotFound, id)
	}
	return os.Remove(filepath.Join(s.dir, id+ext))
}

// expire removes the outputs whose time is up.
func (s *Store) expire() {
	now := s.now()
	s.mu.Lock()
	var gone []string
	for id, exp := range s.expires {
		if !now.Before(exp) {
			gone = append(gone, id)
			delete(s.expires, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		if err := os.Remove(filepath.Join(s.dir, id+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("outputs: remove expired", "id", id, "error", err)
		}
	}
}

// Run removes expired outputs until ctx ends.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(min(max(s.ttl/4, 100*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.expire()
		}
	}
}

// Register adds GET and DELETE /v1/outputs/{id} with handle
// (localapi.Server.Handle, which answers the errors a route returns).
func (s *Store) Register(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("GET /v1/outputs/{id}", s.handleGet)
	handle("DELETE /v1/outputs/{id}", s.handleDelete)
}

func (s *Store) handleGet(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	o, err := s.Get(id)
	if err != nil {
		return err
	}
	f, err := os.Open(o.Path)
	if err != nil {
		return fmt.Errorf("%w %q", ErrNotFound, id)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+ext))
	w.Header().Set("Expires", o.Expires.UTC().Format(http.TimeFormat))
	http.ServeContent(w, r, id+ext, st.ModTime(), f)
	return nil
}

func (s *Store) handleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.Remove(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
