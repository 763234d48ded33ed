package jobs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/api"
)

// The job history: one JSON file per job, StateDir/jobs/<id>.json, written
// atomically when the job is created, starts and ends (and at most every
// saveEvery while it reports progress); its log is StateDir/jobs/<id>.log.
// At start the registry reads them back; a job that was still queued or
// running when the daemon stopped is recorded as interrupted.

// dirJobs is the history folder under the state folder.
const dirJobs = "jobs"

// saveEvery bounds how often a running job's progress is written.
const saveEvery = 5 * time.Second

// interruptedMsg is the error of a job the daemon stopped under.
const interruptedMsg = "the daemon stopped while this job ran"

func (m *Manager) historyDir() string {
	if m.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(m.opts.StateDir, dirJobs)
}

// logPath is a job's log file ("" without a state folder).
func (m *Manager) logPath(id string) string {
	if d := m.historyDir(); d != "" {
		return filepath.Join(d, id+".log")
	}
	return ""
}

// save writes a job's record; unless force, only when the last write is
// older than saveEvery.
func (m *Manager) save(j *job, force bool) {
	dir := m.historyDir()
	if dir == "" {
		return
	}
	j.mu.Lock()
	if !force && time.Since(j.saved) < saveEvery {
		j.mu.Unlock()
		return
	}
	j.saved = time.Now()
	b, err := json.MarshalIndent(j.info, "", "  ")
	id := j.info.ID
	j.mu.Unlock()
	if err == nil {
		if err = os.MkdirAll(dir, 0o750); err == nil {
			err = atomicfile.Write(filepath.Join(dir, id+".json"), b, 0o640)
		}
	}
	if err != nil {
		m.opts.Log.Warn("job history: cannot save", "job", id, "error", err)
	}
}

// forget removes a pruned job's record and log.
func (m *Manager) forget(id string) {
	if dir := m.historyDir(); dir != "" {
		os.Remove(filepath.Join(dir, id+".json"))
		os.Remove(filepath.Join(dir, id+".log"))
	}
}

// loadHistory reads the saved jobs (called from New, before any job runs).
func (m *Manager) loadHistory() {
	dir := m.historyDir()
	if dir == "" {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.opts.Log.Warn("job history: cannot read", "dir", dir, "error", err)
		}
		return
	}
	now := time.Now().UTC()
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			m.opts.Log.Warn("job history: cannot read", "file", name, "error", err)
			continue
		}
		var info api.Job
		if err := json.Unmarshal(b, &info); err != nil || info.ID+".json" != name {
			m.opts.Log.Warn("job history: skipping a bad record", "file", name, "error", err)
			continue
		}
		j := &job{info: info, cancel: func() {}, subs: map[chan api.JobEvent]struct{}{}, done: make(chan struct{})}
		close(j.done)
		if !info.State.Final() {
			j.info.State, j.info.Finished = api.JobInterrupted, &now
			j.info.Error = interruptedMsg
			if info.Type == api.JobTrain && info.Run != "" {
				j.info.Error += "; continue the training with `azaion train --resume " + info.Run + "`"
			}
			if len(info.Pending) > 0 {
				j.info.Error += "; the pipeline stops: " + strings.Join(info.Pending, ", ") + " not run"
			}
			m.save(j, true)
		}
		m.jobs[info.ID] = j
	}
	m.prune()
}
