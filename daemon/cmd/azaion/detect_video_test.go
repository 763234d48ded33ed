package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRenderVideoProgress(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		processed   int
		elapsed     time.Duration
		want        string
	}{
		{30, 120, 8, 2 * time.Second, "[#####...............]  25%  30/120 frames  4.0 fps  ETA 0:06  clip.mp4"},
		{120, 120, 30, 10 * time.Second, "[####################] 100%  120/120 frames  3.0 fps  ETA 0:00  clip.mp4"},
		{0, 120, 0, 0, "[....................]   0%  0/120 frames  0.0 fps  ETA ?  clip.mp4"},
		{57, 0, 15, 3 * time.Second, "frame 57  5.0 fps  clip.mp4"},
	} {
		if got := renderVideoProgress("clip.mp4", tc.done, tc.total, tc.processed, tc.elapsed, 20); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestIsVideo(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	for path, want := range map[string]bool{
		write("a.MP4", nil): true,
		write("clip.bin", []byte("\x00\x00\x00\x20ftypisom\x00\x00")): true,
		write("bus.jpg", []byte("\xff\xd8\xff\xe0")):                  false,
		write("notes", []byte("hello")):                               false,
		filepath.Join(dir, "missing"):                                 false,
	} {
		if got := isVideo(path); got != want {
			t.Errorf("isVideo(%s) = %v", strings.TrimPrefix(path, dir), got)
		}
	}
}
