package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/trainer"
)

// scriptRunner runs jobs in-process: each job emits one event, then fails
// when its type is in fail, or blocks until cancelled when in block.
type scriptRunner struct {
	mu    sync.Mutex
	specs []trainer.JobSpec
	fail  map[trainer.JobType]error
	block map[trainer.JobType]bool
}

func (r *scriptRunner) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	r.mu.Lock()
	r.specs = append(r.specs, spec)
	r.mu.Unlock()
	emit(trainer.Event{Progress: 0.5, Stage: string(spec.Type), Time: time.Now()})
	if r.block[spec.Type] {
		<-ctx.Done()
		return ctx.Err()
	}
	return r.fail[spec.Type]
}

func (r *scriptRunner) ran() []trainer.JobSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]trainer.JobSpec(nil), r.specs...)
}

func waitFinal(t *testing.T, m *Manager, id string) api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := m.Wait(ctx, id)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// TestPipeline: a train job with then: export, gate, publish runs each stage
// as its own job with the train job's run; a failing stage stops the chain
// and says which stages did not run.
func TestPipeline(t *testing.T) {
	publish := &scriptRunner{}
	tests := []struct {
		name      string
		fail      map[trainer.JobType]error
		wantTypes []string
		wantLast  api.JobState
		wantErr   string
	}{
		{"all succeed", nil, []string{"train", "export", "gate", "publish"}, api.JobSucceeded, ""},
		{"gate fails", map[trainer.JobType]error{trainer.JobGate: errors.New("gate failed: drop 12 points")},
			[]string{"train", "export", "gate"}, api.JobFailed, "gate failed: drop 12 points; the pipeline stops: publish not run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &scriptRunner{fail: tc.fail}
			state := t.TempDir()
			m := New(r, Options{DataRoot: "/data", StateDir: state,
				Local: map[string]LocalJob{api.JobPublish: {Runner: publish, Check: func(p json.RawMessage) error {
					_, err := trainer.DecodeParams(p, trainer.DefaultPublishParams())
					return err
				}}}})
			defer m.Close()
			first, err := m.Create(api.JobRequest{Type: "train", Params: json.RawMessage(`{"model": "yolo11n.yaml", "name": "r7"}`),
				Then: []api.JobRequest{{Type: "export", Params: json.RawMessage(`{"formats": ["onnx"]}`)}, {Type: "gate"}, {Type: "publish"}}})
			if err != nil {
				t.Fatal(err)
			}
			if first.Run != "r7" || len(first.Pending) != 3 {
				t.Fatalf("created %+v", first)
			}
			var types []string
			j := waitFinal(t, m, first.ID)
			for {
				types = append(types, j.Type)
				if j.Run != "r7" {
					t.Errorf("%s job run = %q", j.Type, j.Run)
				}
				if j.Next == "" {
					break
				}
				next := waitFinal(t, m, j.Next)
				if next.Previous != j.ID {
					t.Errorf("%s job previous = %q, want %q", next.Type, next.Previous, j.ID)
				}
				j = next
			}
			if strings.Join(types, ",") != strings.Join(tc.wantTypes, ",") || j.State != tc.wantLast || j.Error != tc.wantErr {
				t.Fatalf("ran %v, last %s %q; want %v, %s %q", types, j.State, j.Error, tc.wantTypes, tc.wantLast, tc.wantErr)
			}
			for _, s := range r.ran() {
				if s.StateDir != state || s.LogPath != filepath.Join(state, "jobs", s.ID+".log") {
					t.Errorf("spec %s: state %q log %q", s.Type, s.StateDir, s.LogPath)
				}
				if s.Type != trainer.JobTrain && !strings.Contains(string(s.Params), `"run":"r7"`) {
					t.Errorf("%s params %s lack the run", s.Type, s.Params)
				}
			}
		})
	}
}

// TestTrainRunName: a train job without a name gets one (the start time);
// with resume, the run is the resumed one.
func TestTrainRunName(t *testing.T) {
	m := New(&scriptRunner{}, Options{DataRoot: "/data", StateDir: t.TempDir()})
	defer m.Close()
	j, err := m.Create(api.JobRequest{Type: "train", Params: json.RawMessage(`{"model": "yolo11n.yaml"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !trainer.ValidRunName(j.Run) || !strings.Contains(string(j.Params), `"name":"`+j.Run+`"`) {
		t.Fatalf("run %q, params %s", j.Run, j.Params)
	}
	waitFinal(t, m, j.ID)
	j, err = m.Create(api.JobRequest{Type: "train", Params: json.RawMessage(`{"resume": "old-run"}`)})
	if err != nil || j.Run != "old-run" {
		t.Fatalf("resume: %+v, %v", j, err)
	}
}

// TestHistorySurvivesRestart: finished jobs are read back by a new registry
// on the same state folder; a job that was running when the registry
// closed, and a record left as running by a crash, come back interrupted.
func TestHistorySurvivesRestart(t *testing.T) {
	state := t.TempDir()
	r := &scriptRunner{block: map[trainer.JobType]bool{trainer.JobTrain: true}}
	m := New(r, Options{DataRoot: "/data", StateDir: state})
	done, err := m.Create(api.JobRequest{Type: "export", Params: json.RawMessage(`{"run": "r1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, m, done.ID)
	running, err := m.Create(api.JobRequest{Type: "train", Params: json.RawMessage(`{"model": "yolo11n.yaml", "name": "r1"}`),
		Then: []api.JobRequest{{Type: "export"}}})
	if err != nil {
		t.Fatal(err)
	}
	for len(r.ran()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	m.Close()
	// A crash leaves a record in the running state.
	crashed := api.Job{ID: "job-crashed", Type: "gate", State: api.JobRunning, Run: "r0", Created: time.Now().Add(-time.Hour)}
	b, _ := json.Marshal(crashed)
	os.WriteFile(filepath.Join(state, "jobs", "job-crashed.json"), b, 0o640)
	os.WriteFile(filepath.Join(state, "jobs", "job-bad.json"), []byte("{not json"), 0o640)

	m2 := New(&scriptRunner{}, Options{DataRoot: "/data", StateDir: state})
	defer m2.Close()
	list := m2.List()
	byID := map[string]api.Job{}
	for _, j := range list {
		byID[j.ID] = j
	}
	if len(list) != 3 {
		t.Fatalf("history has %d jobs, want 3: %+v", len(list), list)
	}
	if j := byID[done.ID]; j.State != api.JobSucceeded || j.Run != "r1" {
		t.Errorf("finished job: %+v", j)
	}
	if j := byID[running.ID]; j.State != api.JobInterrupted || !strings.Contains(j.Error, "azaion train --resume r1") ||
		!strings.Contains(j.Error, "export not run") {
		t.Errorf("job running at shutdown: %s %q", j.State, j.Error)
	}
	if j := byID["job-crashed"]; j.State != api.JobInterrupted || j.Finished == nil {
		t.Errorf("crashed job: %+v", j)
	}
	// The events of a job from the history end at once with its state.
	_, ch, unsub, err := m2.Subscribe(done.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if _, open := <-ch; open {
		t.Error("event stream of a finished job is open")
	}
	// The new registry runs new jobs of the same type.
	if _, err := m2.Create(api.JobRequest{Type: "train", Params: json.RawMessage(`{"resume": "r1"}`)}); err != nil {
		t.Fatal(err)
	}
}
