package distribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient"
	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/sdk/container"
	"github.com/azaion/edge/sdk/model"
)

// A model version published as a bundle holds several artifacts (ONNX for
// CPUs, a TensorRT engine per GPU, RKNN for an RK3588), each sealed in its
// own container with its own key: its small part is the API resource
// "<name>@<version>.<file>.small" and its big part the CDN object
// "models/<name>/<version>/<file>/big". The bundle index, the API resource
// "<name>@<version>.bundle", lists the artifacts; it is uploaded last, so a
// device never sees a bundle whose parts are not all there. A device reads
// the index, picks the artifact that fits its backends (catalog.Select) and
// fetches only that artifact's parts.

// BundleName is the API resource name of a bundle index.
func BundleName(name, version string) string { return name + "@" + version + ".bundle" }

// ArtifactSmallName is the API resource name of a bundle artifact's small part.
func ArtifactSmallName(name, version, file string) string {
	return name + "@" + version + "." + file + ".small"
}

// ArtifactBigKey is the CDN key of a bundle artifact's big part.
func ArtifactBigKey(name, version, file string) string {
	return "models/" + name + "/" + version + "/" + file + "/big"
}

// Bundle is a bundle index.
type Bundle struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	// Artifacts are the bundle's artifacts, most preferred first for equal fit.
	Artifacts []BundleArtifact `json:"artifacts"`
	// Override is the reason given for publishing without a passed gate.
	Override string `json:"override,omitempty"`
}

// BundleArtifact is one artifact of a bundle.
type BundleArtifact struct {
	// Target names the backend, device and runtime it is built for, and its file.
	Target model.Artifact `json:"target"`
	// Precision is fp32, fp16 or int8.
	Precision string `json:"precision,omitempty"`
	// Size and SHA256 describe the plaintext.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Targets returns the artifacts' targets, in order.
func (b *Bundle) Targets() []model.Artifact {
	out := make([]model.Artifact, len(b.Artifacts))
	for i, a := range b.Artifacts {
		out[i] = a.Target
	}
	return out
}

// Validate checks that a bundle index is well formed.
func (b *Bundle) Validate(name, version string) error {
	if b.Name != name || b.Version != version {
		return fmt.Errorf("%w: the bundle index is model %s:%s", container.ErrMismatch, b.Name, b.Version)
	}
	if len(b.Artifacts) == 0 {
		return fmt.Errorf("bundle %s:%s lists no artifact", name, version)
	}
	seen := map[string]bool{}
	for _, a := range b.Artifacts {
		f := a.Target.File
		if !model.ValidName(f) || !apiclient.ValidName(ArtifactSmallName(name, version, f)) || seen[f] {
			return fmt.Errorf("bundle %s:%s: bad or repeated artifact file %q", name, version, f)
		}
		seen[f] = true
	}
	return nil
}

// Part is one artifact to publish in a bundle.
type Part struct {
	// Descriptor is the artifact's descriptor; Descriptor.Artifacts[0] is
	// its target (backend, device, runtime, format, file).
	Descriptor model.Descriptor
	// Precision is fp32, fp16 or int8.
	Precision string
	// Open returns the plaintext (called once, when the part is sealed).
	Open func() ([]byte, error)
}

// PublishBundle publishes the parts as one model version: each artifact is
// encrypted, split and uploaded (big part to the CDN, small part to the
// API), then the bundle index goes to the API. progress is called after
// each artifact.
func (s *Service) PublishBundle(ctx context.Context, name, version, override string, parts []Part, progress func(done int, file string)) (*Bundle, error) {
	if s.API == nil || s.CDNWriter == nil {
		return nil, errors.New("publish: the API and the CDN (write credentials) must be configured")
	}
	if !model.ValidName(name) || !model.ValidName(version) {
		return nil, fmt.Errorf("publish %s:%s: invalid model name or version", name, version)
	}
	b := &Bundle{Name: name, Version: version, Created: time.Now().UTC(), Override: override}
	for _, p := range parts {
		d := p.Descriptor
		if len(d.Artifacts) != 1 || d.Artifacts[0].File == "" {
			return nil, fmt.Errorf("publish %s:%s: a bundle part needs exactly one target with a file", name, version)
		}
		d.Name, d.Version = name, version
		b.Artifacts = append(b.Artifacts, BundleArtifact{Target: d.Artifacts[0], Precision: p.Precision})
	}
	if err := b.Validate(name, version); err != nil {
		return nil, err
	}
	if err := s.CDNWriter.EnsureBucket(ctx); err != nil {
		return nil, fmt.Errorf("publish %s:%s: %w", name, version, err)
	}
	for i, p := range parts {
		d := p.Descriptor
		d.Name, d.Version = name, version
		if err := d.Validate(); err != nil {
			return nil, err
		}
		file := d.Artifacts[0].File
		plain, err := p.Open()
		if err != nil {
			return nil, fmt.Errorf("publish %s:%s: %s: %w", name, version, file, err)
		}
		sealed, err := container.Seal(plain, d, container.SealOptions{})
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("publish %s:%s: %s: %w", name, version, file, err)
		}
		b.Artifacts[i].Size, b.Artifacts[i].SHA256 = sealed.Header.PlaintextSize, sealed.Header.PlaintextSHA256
		err = s.CDNWriter.Upload(ctx, ArtifactBigKey(name, version, file), bytes.NewReader(sealed.Big), int64(len(sealed.Big)))
		if err == nil {
			err = s.API.Upload(ctx, Folder, ArtifactSmallName(name, version, file), sealed.Small)
		}
		clear(sealed.Small)
		if err != nil {
			return nil, fmt.Errorf("publish %s:%s: %s: %w", name, version, file, err)
		}
		s.log().Info("bundle artifact published", "model", name+":"+version, "file", file, "backend", d.Artifacts[0].Backend,
			"bytes", sealed.Header.PlaintextSize)
		if progress != nil {
			progress(i+1, file)
		}
	}
	idx, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if err := s.API.Upload(ctx, Folder, BundleName(name, version), idx); err != nil {
		return nil, fmt.Errorf("publish %s:%s: bundle index: %w", name, version, err)
	}
	return b, nil
}

// fetchBundle returns the bundle index of name:version, or nil when the
// version was published as a single model.
func (s *Service) fetchBundle(ctx context.Context, name, version string, key keys.Key) (*Bundle, error) {
	env, err := s.API.Get(ctx, Folder, BundleName(name, version), s.Keys.HardwareHash)
	if errors.Is(err, apiclient.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle index: %w", err)
	}
	raw, err := key.Open(env)
	if err != nil {
		return nil, fmt.Errorf("bundle index from the API: %w", err)
	}
	var b Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("bundle index: %w", err)
	}
	if err := b.Validate(name, version); err != nil {
		return nil, err
	}
	return &b, nil
}
