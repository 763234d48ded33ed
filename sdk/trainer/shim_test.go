package trainer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/azaion/edge/sdk/plugin/plugintest"
	pb "github.com/azaion/edge/sdk/trainer/proto"
)

// stepTrainer emits n events, then fails, succeeds, or waits to be cancelled.
type stepTrainer struct {
	n       int
	fail    error
	block   bool
	started chan struct{}
}

func (s *stepTrainer) Info(context.Context) (*Info, error) {
	return &Info{Name: "step", APIVersions: []string{APIVersion}, JobTypes: []JobType{JobAugment}}, nil
}

func (s *stepTrainer) StartJob(ctx context.Context, spec JobSpec, emit func(Event)) error {
	if !spec.Type.Valid() {
		return ErrBadSpec
	}
	for i := 1; i <= s.n; i++ {
		emit(Event{Progress: float64(i) / float64(s.n), Stage: "step", Metrics: map[string]float64{"i": float64(i)}, Time: time.Now()})
	}
	if s.block {
		close(s.started)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.fail
}

func (s *stepTrainer) Cancel(context.Context, string) error { return ErrUnknownJob }

func dial(t *testing.T, impl Trainer) *Client {
	t.Helper()
	srv := grpc.NewServer()
	pb.RegisterTrainerServer(srv, &server{impl: impl})
	return NewClient(plugintest.Conn(t, srv))
}

func TestShimStreamsEventsAndErrors(t *testing.T) {
	tests := []struct {
		name string
		impl *stepTrainer
		typ  JobType
		want error
	}{
		{"ok", &stepTrainer{n: 5}, JobAugment, nil},
		{"job error", &stepTrainer{n: 2, fail: errors.New("disk full")}, JobAugment, nil},
		{"bad spec", &stepTrainer{n: 0}, "fly", ErrBadSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.impl)
			var got []Event
			err := c.StartJob(context.Background(), JobSpec{ID: "j", Type: tc.typ, DataRoot: "/x"}, func(e Event) { got = append(got, e) })
			switch {
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			case tc.impl.fail != nil:
				if err == nil || !strings.Contains(err.Error(), "disk full") {
					t.Fatalf("err = %v, want the job's error", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if len(got) != tc.impl.n {
				t.Fatalf("%d events, want %d", len(got), tc.impl.n)
			}
			if tc.impl.n > 0 && (got[len(got)-1].Progress != 1 || got[0].Metrics["i"] != 1 || got[0].Time.IsZero()) {
				t.Fatalf("events %+v", got)
			}
		})
	}
	c := dial(t, &stepTrainer{})
	if err := c.Cancel(context.Background(), "nope"); !errors.Is(err, ErrUnknownJob) {
		t.Fatalf("cancel unknown: %v", err)
	}
	info, err := c.Info(context.Background())
	if err != nil || info.Name != "step" || info.JobTypes[0] != JobAugment {
		t.Fatal(info, err)
	}
}

func TestShimCancelStopsJob(t *testing.T) {
	impl := &stepTrainer{n: 1, block: true, started: make(chan struct{})}
	c := dial(t, impl)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.StartJob(ctx, JobSpec{ID: "j", Type: JobAugment}, nil) }()
	<-impl.started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the job")
	}
}

func TestDecodeParams(t *testing.T) {
	p, err := DecodeParams([]byte(`{"seed": 9, "workers": 2}`), DefaultAugmentParams())
	if err != nil || p.Seed != 9 || p.Workers != 2 || p.Variants != 7 {
		t.Fatal(p, err)
	}
	for _, raw := range []string{`{"variants": -1}`, `{"jpeg_quality": 0}`, `{"flip_p": 2}`, `{"seed": "x"}`} {
		if _, err := DecodeParams([]byte(raw), DefaultAugmentParams()); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%s: err = %v, want ErrBadSpec", raw, err)
		}
	}
	if _, err := DecodeParams([]byte(`{"train": 0.5}`), DefaultDatasetParams()); !errors.Is(err, ErrBadSpec) {
		t.Errorf("fractions not summing to 1 accepted: %v", err)
	}
	if _, err := DecodeParams([]byte(`{"name": "../x"}`), DefaultDatasetParams()); !errors.Is(err, ErrBadSpec) {
		t.Errorf("name with a slash accepted: %v", err)
	}
}
