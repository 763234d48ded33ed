// Package streams runs the daemon's live stream sessions (/v1/streams): each
// session keeps a DetectVideo call open on its source through the scheduler
// (the backend plugin decodes and drops frames to stay real time),
// reconnects with exponential backoff when the source or the backend drops
// (so sessions resume after a plugin relaunch), keeps frame counters and
// rates, and fans its detections out to server-sent-event watchers, dropping
// events for a watcher that falls behind rather than queueing them. A
// source's credentials never leave its session: the API, logs and metrics
// see the redacted URL. It is imported only by the daemon.
package streams

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/azaion/edge/daemon/internal/sched"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

// Errors of the manager; the HTTP handlers map them to statuses.
var (
	ErrNotFound = errors.New("no such stream")
	ErrExists   = errors.New("stream exists")
	ErrTooMany  = errors.New("too many streams")
	ErrBad      = errors.New("bad stream request")
)

// Detector runs a model on a video source (sched.Scheduler).
type Detector interface {
	DetectVideo(ctx context.Context, name string, req backend.VideoRequest, emit func(sched.ModelInfo, backend.VideoEvent) error) error
}

// Options configure a Manager.
type Options struct {
	Detector Detector
	// MaxSessions bounds the sessions.
	MaxSessions int
	// ReconnectMin and ReconnectMax bound the backoff between reconnects.
	ReconnectMin, ReconnectMax time.Duration
	// Every is the default frame step.
	Every int
	Log   *slog.Logger
}

// Spec is what a session runs.
type Spec struct {
	ID     string
	Source videosrc.Secret
	Model  string
	Every  int
	Params yolo.Params
}

// watcherBuffer is how many events a watcher may fall behind before its
// events are dropped.
const watcherBuffer = 64

// rateWindow is how many progress samples the fps rates span.
const rateWindow = 5

// Manager holds the sessions.
type Manager struct {
	opts Options

	mu       sync.Mutex
	sessions map[string]*session
	ctx      context.Context // set by Run; nil before
	wg       sync.WaitGroup
}

// New returns a Manager; sessions added before Run start when it runs.
func New(opts Options) *Manager {
	if opts.Every < 1 {
		opts.Every = 4
	}
	return &Manager{opts: opts, sessions: map[string]*session{}}
}

// Run starts the sessions and keeps them until ctx ends, then stops them.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	for _, s := range m.sessions {
		m.start(s)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.wg.Wait()
	// End the event streams, so that the HTTP server drains at once.
	m.mu.Lock()
	for _, s := range m.sessions {
		s.setState(api.StreamStopped, "")
		s.closeWatchers()
	}
	m.mu.Unlock()
}

// start runs a session's loop (m.mu held, m.ctx set).
func (m *Manager) start(s *session) {
	ctx, cancel := context.WithCancel(m.ctx)
	s.cancel = cancel
	m.wg.Go(func() { s.run(ctx) })
}

// Add validates spec and starts a session for it.
func (m *Manager) Add(spec Spec, origin string) (api.Stream, error) {
	if _, err := videosrc.CheckStream(spec.Source.Reveal()); err != nil {
		return api.Stream{}, fmt.Errorf("%w: %w", ErrBad, err)
	}
	if spec.Every == 0 {
		spec.Every = m.opts.Every
	}
	if spec.Every < 1 || spec.Every > 1000 {
		return api.Stream{}, fmt.Errorf("%w: every %d: want 1 to 1000", ErrBad, spec.Every)
	}
	p := spec.Params.WithDefaults()
	if p.Conf < 0 || p.Conf > 1 || p.IoU < 0 || p.IoU > 1 || p.MaxDet < 1 || p.MaxDet > 10000 {
		return api.Stream{}, fmt.Errorf("%w: conf and iou must be 0..1, max_det 1..10000", ErrBad)
	}
	spec.Params = p
	m.mu.Lock()
	defer m.mu.Unlock()
	if spec.ID == "" {
		spec.ID = newID(m.sessions)
	}
	if _, ok := m.sessions[spec.ID]; ok {
		return api.Stream{}, fmt.Errorf("%w: %q", ErrExists, spec.ID)
	}
	if len(m.sessions) >= m.opts.MaxSessions {
		return api.Stream{}, fmt.Errorf("%w: %d sessions run (streams.max_sessions)", ErrTooMany, len(m.sessions))
	}
	s := &session{m: m, spec: spec, origin: origin, log: m.opts.Log.With("stream", spec.ID),
		state: api.StreamConnecting, since: time.Now(), watchers: map[chan event]struct{}{}}
	m.sessions[spec.ID] = s
	if m.ctx != nil {
		m.start(s)
	}
	s.log.Info("stream added", "source", spec.Source, "model", spec.Model, "every", spec.Every, "origin", origin)
	return s.snapshot(), nil
}

func newID(taken map[string]*session) string {
	for {
		var b [4]byte
		_, _ = crand.Read(b[:])
		id := "s-" + hex.EncodeToString(b[:])
		if _, ok := taken[id]; !ok {
			return id
		}
	}
}

// Remove stops a session and forgets it.
func (m *Manager) Remove(id string) error {
	m.mu.Lock()
	s, ok := m.sessions[id]
	delete(m.sessions, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.setState(api.StreamStopped, "")
	s.closeWatchers()
	s.log.Info("stream removed")
	return nil
}

// List returns the sessions, by id.
func (m *Manager) List() []api.Stream {
	m.mu.Lock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]api.Stream, len(all))
	for i, s := range all {
		out[i] = s.snapshot()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns one session.
func (m *Manager) Get(id string) (api.Stream, error) {
	s, err := m.session(id)
	if err != nil {
		return api.Stream{}, err
	}
	return s.snapshot(), nil
}

func (m *Manager) session(id string) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s, nil
}

// event is what a watcher receives.
type event struct {
	frame *api.StreamFrame
	state *api.Stream
}

// session is one live stream.
type session struct {
	m      *Manager
	spec   Spec
	origin string
	log    *slog.Logger
	cancel context.CancelFunc

	mu         sync.Mutex
	state      string
	since      time.Time
	lastErr    string
	reconnects int
	width      int
	height     int
	// Totals of the finished connections, and the current one's.
	base, cur backend.VideoProgress
	samples   []sample
	lastFrame time.Time
	watchers  map[chan event]struct{}
	closed    bool
}

type sample struct {
	t                  time.Time
	decoded, processed int64
}

// run keeps the session connected until ctx ends.
func (s *session) run(ctx context.Context) {
	backoff := s.m.opts.ReconnectMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
		}
		s.setState(api.StreamConnecting, "")
		connected := false
		var why string
		req := backend.VideoRequest{Source: s.spec.Source.Reveal(), Every: s.spec.Every, Live: true,
			Params: backend.DetectParams{Params: s.spec.Params}}
		err := s.m.opts.Detector.DetectVideo(ctx, s.spec.Model, req, func(mi sched.ModelInfo, ev backend.VideoEvent) error {
			switch {
			case ev.Info != nil:
				connected = true
				backoff = s.m.opts.ReconnectMin
				s.connected(ev.Info)
			case ev.Frame != nil:
				s.frame(mi, ev.Frame)
			case ev.Progress != nil:
				s.progress(*ev.Progress)
			case ev.Summary != nil:
				s.progress(backend.VideoProgress{Decoded: ev.Summary.Decoded, Processed: ev.Summary.Processed, Dropped: ev.Summary.Dropped})
				why = ev.Summary.Err
			}
			return nil
		})
		s.endConnection()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			why = err.Error()
		case why == "":
			why = "the stream ended"
		}
		why = s.spec.Source.Scrub(why)
		s.setState(api.StreamConnecting, why)
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/4+1))
		s.log.Warn("stream source failed, reconnecting", "source", s.spec.Source, "error", why, "connected", connected, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, s.m.opts.ReconnectMax)
	}
}

func (s *session) connected(info *backend.VideoInfo) {
	s.mu.Lock()
	s.width, s.height = info.Width, info.Height
	s.mu.Unlock()
	s.setState(api.StreamRunning, "")
	s.log.Info("stream connected", "source", s.spec.Source, "size", fmt.Sprintf("%dx%d", info.Width, info.Height), "fps", info.FPS)
}

func (s *session) frame(mi sched.ModelInfo, f *backend.FrameResult) {
	s.mu.Lock()
	s.lastFrame = f.Time
	s.cur.Processed++ // until the next progress report says exactly
	s.mu.Unlock()
	s.broadcast(event{frame: &api.StreamFrame{Stream: s.spec.ID, Frame: f.Frame, Time: f.Time,
		Width: f.Result.Width, Height: f.Result.Height, Detections: api.FromDetections(f.Result.Detections, mi.Descriptor.Classes)}})
}

func (s *session) progress(p backend.VideoProgress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = p
	s.samples = append(s.samples, sample{t: time.Now(), decoded: s.base.Decoded + p.Decoded, processed: s.base.Processed + p.Processed})
	if len(s.samples) > rateWindow {
		s.samples = s.samples[len(s.samples)-rateWindow:]
	}
}

// endConnection folds the connection's counters into the totals.
func (s *session) endConnection() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base.Decoded += s.cur.Decoded
	s.base.Processed += s.cur.Processed
	s.base.Dropped += s.cur.Dropped
	s.cur = backend.VideoProgress{}
	s.samples = nil
}

// setState changes the state (and the last error, when err is set) and
// tells the watchers.
func (s *session) setState(state, err string) {
	s.mu.Lock()
	changed := s.state != state || (err != "" && err != s.lastErr)
	if s.state != state {
		s.since = time.Now()
	}
	s.state = state
	if err != "" {
		s.lastErr = err
	}
	s.mu.Unlock()
	if changed {
		snap := s.snapshot()
		s.broadcast(event{state: &snap})
	}
}

func (s *session) snapshot() api.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := api.Stream{ID: s.spec.ID, Source: s.spec.Source.String(), Model: s.spec.Model, Every: s.spec.Every,
		Origin: s.origin, State: s.state, Since: s.since, Width: s.width, Height: s.height,
		FramesDecoded:   s.base.Decoded + s.cur.Decoded,
		FramesProcessed: s.base.Processed + s.cur.Processed,
		FramesDropped:   s.base.Dropped + s.cur.Dropped,
		Reconnects:      s.reconnects, LastError: s.lastErr, LastFrame: s.lastFrame}
	if n := len(s.samples); n >= 2 && s.state == api.StreamRunning {
		a, b := s.samples[0], s.samples[n-1]
		if dt := b.t.Sub(a.t).Seconds(); dt > 0 {
			out.FPSIn = round2(float64(b.decoded-a.decoded) / dt)
			out.FPSOut = round2(float64(b.processed-a.processed) / dt)
		}
	}
	return out
}

// watch registers a watcher; the returned function unregisters it.
func (s *session) watch() (<-chan event, func()) {
	ch := make(chan event, watcherBuffer)
	s.mu.Lock()
	if s.closed {
		close(ch)
	} else {
		s.watchers[ch] = struct{}{}
	}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
		s.mu.Unlock()
	}
}

// broadcast hands ev to every watcher that has room; a watcher that is
// behind misses it.
func (s *session) broadcast(ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (s *session) closeWatchers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.watchers {
		close(ch)
		delete(s.watchers, ch)
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// validID reports whether id may name a session.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return false
		}
	}
	return true
}
