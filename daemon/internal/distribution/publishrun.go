package distribution

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/azaion/edge/sdk/trainer"
)

// RunPublisher is the publish job (run in the daemon, which holds the API
// and CDN credentials): it sends a training run's gated artifacts as one
// model version, a bundle. It implements the jobs registry's Runner.
type RunPublisher struct {
	Service *Service
}

// CheckPublishParams validates a publish job's parameters.
func CheckPublishParams(raw json.RawMessage) error {
	_, err := trainer.DecodeParams(raw, trainer.DefaultPublishParams())
	return err
}

// StartJob publishes spec's run (trainer.PublishParams): the artifacts of
// its export that passed the gate (all of them with an override), without
// the variants (the dynamic-batch ONNX), named and versioned as the export
// named them. Without a passed gate report for the current export it fails,
// unless an override reason is given, which is logged and stored in the
// bundle index.
func (r RunPublisher) StartJob(ctx context.Context, spec trainer.JobSpec, emit func(trainer.Event)) error {
	p, err := trainer.DecodeParams(spec.Params, trainer.DefaultPublishParams())
	if err != nil {
		return err
	}
	s := r.Service
	if s == nil || s.API == nil || s.CDNWriter == nil {
		return fmt.Errorf("%w: publishing needs api.url, api.email, the API password, cdn.endpoint and the CDN write key in the daemon configuration", ErrNotConfigured)
	}
	dir := filepath.Join(spec.StateDir, trainer.DirTraining, p.Run)
	man, err := trainer.ReadExportManifest(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", trainer.ErrBadSpec, err)
	}
	manBytes, err := os.ReadFile(filepath.Join(dir, trainer.DirExport, trainer.ExportManifestFile))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(manBytes)
	passed := map[string]bool{}
	gate, gerr := trainer.ReadGateReport(dir)
	var why string
	switch {
	case gerr != nil:
		why = "the gate has not run on this export"
	case gate.Export != hex.EncodeToString(sum[:]):
		why = "the gate report is for an earlier export"
	case !gate.Passed:
		var failed []string
		for _, a := range gate.Artifacts {
			if !a.Passed {
				failed = append(failed, a.File)
			}
		}
		why = "the gate failed for " + strings.Join(failed, ", ")
	}
	if gerr == nil {
		for _, a := range gate.Artifacts {
			passed[a.File] = a.Passed
		}
	}
	if why != "" && p.Override == "" {
		return fmt.Errorf("run %s is not published: %s (run `azaion gate --run %s`, or publish with an override reason)", p.Run, why, p.Run)
	}
	if why != "" {
		s.log().Warn("publishing without a passed gate", "run", p.Run, "gate", why, "override", p.Override)
		emit(trainer.Event{Stage: "override", Message: fmt.Sprintf("publishing although %s; override: %s", why, p.Override), Time: time.Now()})
	}
	var parts []Part
	var files []string
	for _, a := range man.Artifacts {
		if a.Variant != "" || (why == "" && !passed[a.File]) {
			continue
		}
		path := filepath.Join(dir, trainer.DirExport, a.File)
		want := a.SHA256
		parts = append(parts, Part{Descriptor: a.Descriptor, Precision: a.Precision, Open: func() ([]byte, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != want {
				clear(b)
				return nil, fmt.Errorf("%s does not match export.json", filepath.Base(path))
			}
			return b, nil
		}})
		files = append(files, a.File)
	}
	if len(parts) == 0 {
		return fmt.Errorf("run %s: no artifact to publish", p.Run)
	}
	emit(trainer.Event{Stage: "publish", Message: fmt.Sprintf("%s:%s: %s", man.Name, man.Version, strings.Join(files, ", ")), Time: time.Now()})
	b, err := s.PublishBundle(ctx, man.Name, man.Version, p.Override, parts, func(done int, file string) {
		emit(trainer.Event{Progress: float64(done) / float64(len(parts)), Stage: "publish", Message: file + " uploaded", Time: time.Now()})
	})
	if err != nil {
		return err
	}
	emit(trainer.Event{Progress: 1, Stage: "done", Message: fmt.Sprintf("published %s:%s as one bundle of %d artifacts (%s)",
		b.Name, b.Version, len(b.Artifacts), strings.Join(files, ", ")),
		Metrics: map[string]float64{"artifacts": float64(len(b.Artifacts))}, Time: time.Now()})
	return nil
}
