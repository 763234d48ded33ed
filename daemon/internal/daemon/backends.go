package daemon

import (
	"sort"
	"sync"

	"github.com/azaion/edge/daemon/internal/pluginmgr"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/backend"
)

// backendSet is the daemon's inference plugins by name; it implements
// sched.Backends.
type backendSet struct {
	mu      sync.Mutex
	plugins map[string]*pluginmgr.Plugin
	infos   map[string]*backend.Info
}

func (s *backendSet) add(p *pluginmgr.Plugin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plugins[p.Name()] = p
}

func (s *backendSet) setInfo(name string, info *backend.Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.infos == nil {
		s.infos = map[string]*backend.Info{}
	}
	s.infos[name] = info
}

func (s *backendSet) get(name string) *pluginmgr.Plugin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plugins[name]
}

// Backend implements sched.Backends.
func (s *backendSet) Backend(name string) (backend.Backend, error) {
	p := s.get(name)
	if p == nil {
		return nil, &noBackendError{name}
	}
	impl, err := p.Get()
	if err != nil {
		return nil, err
	}
	b, ok := impl.(backend.Backend)
	if !ok {
		return nil, &noBackendError{name}
	}
	return b, nil
}

// Failed implements sched.Backends.
func (s *backendSet) Failed(name string) {
	if p := s.get(name); p != nil {
		p.Fail()
	}
}

func (s *backendSet) status() []api.Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.Backend{}
	for name, p := range s.plugins {
		st := p.Status()
		b := api.Backend{Name: name, State: string(st.State), PID: st.PID, Restarts: st.Restarts,
			LastError: st.LastError, Since: st.Since}
		if info := s.infos[name]; info != nil {
			b.Version, b.Formats, b.Providers = info.Version, info.Formats, info.Providers
			for _, d := range info.Devices {
				b.Devices = append(b.Devices, api.BackendDevice{ID: d.ID, Kind: d.Kind, Name: d.Name,
					MemoryTotal: d.MemoryTotal, MemoryFree: d.MemoryFree, Compute: d.Compute, UUID: d.UUID})
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type noBackendError struct{ name string }

func (e *noBackendError) Error() string {
	return "no backend " + e.name + " is configured (enable it in the config)"
}
