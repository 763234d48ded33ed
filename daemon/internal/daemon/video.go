package daemon

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/azaion/edge/daemon/internal/localapi"
	"github.com/azaion/edge/daemon/internal/outputs"
	"github.com/azaion/edge/daemon/internal/streams"
	"github.com/azaion/edge/sdk/videosrc"
	"github.com/azaion/edge/sdk/yolo"
)

// videoOptions prepares video detection (issue 11): the upload spool
// (emptied at start) and the annotated outputs folder under the state dir.
func (d *Daemon) videoOptions() (*localapi.VideoOptions, error) {
	c := d.cfg.Video
	spool := filepath.Join(d.cfg.Paths.State, "tmp", "video")
	if err := os.RemoveAll(spool); err != nil {
		return nil, fmt.Errorf("video spool: %w", err)
	}
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("video spool: %w", err)
	}
	outs, err := outputs.New(filepath.Join(d.cfg.Paths.State, "outputs"), c.OutputTTL, d.log.With("component", "outputs"))
	if err != nil {
		return nil, err
	}
	return &localapi.VideoOptions{MediaDir: c.MediaDir, SpoolDir: spool, MaxUploadBytes: c.MaxUploadBytes,
		MaxFrames: c.MaxFrames, MaxDuration: c.MaxDuration, MaxJobs: c.MaxJobs, Every: c.Every,
		AnnotateCodec: c.AnnotateCodec, Outputs: outs}, nil
}

// addStreams serves /v1/streams and starts the sessions of the configuration.
func (d *Daemon) addStreams() error {
	c := d.cfg.Streams
	m := streams.New(streams.Options{Detector: d.sched, MaxSessions: c.MaxSessions, ReconnectMin: c.ReconnectMin,
		ReconnectMax: c.ReconnectMax, Every: d.cfg.Video.Every, Log: d.log.With("component", "streams")})
	for i, s := range c.Sessions {
		spec := streams.Spec{ID: s.ID, Source: videosrc.Secret(s.Source.Reveal()), Model: s.Model, Every: s.Every,
			Params: yolo.Params{Conf: float32(s.Conf), IoU: float32(s.IoU), MaxDet: s.MaxDet, Classes: s.Classes}}
		if _, err := m.Add(spec, "config"); err != nil {
			return fmt.Errorf("config: streams.sessions[%d]: %w", i, err)
		}
	}
	m.Register(d.api.Handle, func(name string) error {
		_, err := d.sched.Lookup(name)
		return err
	})
	d.reg.MustRegister(m.Collector())
	d.tasks = append(d.tasks, m.Run)
	d.streams = m
	return nil
}
