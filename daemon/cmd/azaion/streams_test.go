package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/internal/videotest"
	"github.com/azaion/edge/sdk/api"
)

// TestStreamsAndVideoCLI runs the real binaries against a real RTSP server
// (GStreamer's, with Basic auth): a session declared in the config starts
// with the daemon and delivers detections; `azaion streams add|ls|watch|rm`
// work; the session reconnects when the server is killed and restarted and
// resumes after the plugin is SIGKILLed; a URL that never answers stays
// connecting with its error and is retried; the password shows nowhere. Then
// `azaion detect` on a video file: NDJSON with --json, a summary and the
// annotated video with --out.
func TestStreamsAndVideoCLI(t *testing.T) {
	azaion := testenv.Binary(t, "daemon/cmd/azaion")
	plugin := testenv.Binary(t, "plugins/onnx/cmd/azaion-plugin-onnx")
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Model(t, "yolo11n_int8.onnx"), filepath.Join(models, "yolo11n_int8.onnx")); err != nil {
		t.Fatal(err)
	}
	const password = "pa:ss@w0rd"
	srv := videotest.StartRTSP(t, videotest.Make(t, videotest.Clip{Format: "h264", Frames: 60}), 30, "cam", password)
	urlFile := filepath.Join(dir, "cam1.url")
	if err := os.WriteFile(urlFile, []byte(srv.URL(true)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`log: {level: debug}
onnx: {intra_op_threads: 2}
streams:
  reconnect_min: 200ms
  reconnect_max: 1s
  sessions:
    - {id: cam1, source_file: %s, every: 2}
`, urlFile)
	if err := os.WriteFile(filepath.Join(dir, "azaion.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "azaion.sock")
	env := append(os.Environ(),
		"AZAION_CONFIG="+filepath.Join(dir, "azaion.yaml"),
		"AZAION_HTTP_ADDR="+testenv.FreeTCPAddr(t),
		"AZAION_SOCKET="+sock,
		"AZAION_MODELS_DIR="+models,
		"AZAION_STATE_DIR="+filepath.Join(dir, "state"),
		"AZAION_PLUGIN_DIR="+filepath.Dir(plugin),
		"AZAION_ORT_LIB="+testenv.ORTLib(t),
		"AZAION_LOG_FORMAT=json",
	)
	serve := startProc(t, azaion, env, "serve")
	c := api.NewSocketClient(sock)
	ctx := context.Background()
	waitUntil(t, 2*time.Minute, "daemon ready", func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return c.Ready(cctx)
	})
	stream := func(id string) api.Stream {
		t.Helper()
		s, err := c.GetStream(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return *s
	}
	// watch waits for n frames of a session with `azaion streams watch`.
	watch := func(id string, n int) []api.StreamFrame {
		t.Helper()
		out := runCLIWithin(t, 60*time.Second, azaion, env, "", "streams", "watch", "--json", "--frames", fmt.Sprint(n), id)
		var frames []api.StreamFrame
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Event string `json:"event"`
				api.StreamFrame
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("watch line %q: %v", line, err)
			}
			if ev.Event == "frame" {
				frames = append(frames, ev.StreamFrame)
			}
		}
		if len(frames) != n {
			t.Fatalf("watch %s: %d frames, want %d:\n%s", id, len(frames), n, out)
		}
		return frames
	}

	// The configured session delivers detections.
	frames := watch("cam1", 3)
	found := false
	for _, f := range frames {
		found = found || len(f.Detections) > 0
		if f.Width != 640 || f.Height != 360 {
			t.Errorf("frame %+v: want 640x360", f)
		}
	}
	if !found {
		t.Errorf("no detections in %d frames of the stream", len(frames))
	}
	s := stream("cam1")
	if s.State != api.StreamRunning || s.Origin != "config" || !strings.Contains(s.Source, "cam:xxxxx@") || s.FramesProcessed == 0 {
		t.Fatalf("cam1 %+v: want running, from config, with a masked source", s)
	}

	// A session added by the CLI, the URL read from stdin.
	out := runCLIWithin(t, 30*time.Second, azaion, env, srv.URL(true)+"\n", "streams", "add", "--id", "cam2", "--every", "3", "-")
	if !strings.Contains(out, "stream cam2 added") || strings.Contains(out, "w0rd") {
		t.Fatalf("streams add: %s", out)
	}
	watch("cam2", 2)
	ls := runCLI(t, azaion, env, "streams", "ls")
	for _, want := range []string{"cam1", "cam2", "running", "cam:xxxxx@"} {
		if !strings.Contains(ls, want) {
			t.Errorf("streams ls lacks %q:\n%s", want, ls)
		}
	}

	// The server goes away: the session says so and retries; it comes back:
	// the session reconnects and detections resume.
	srv.Kill()
	waitUntil(t, 30*time.Second, "cam1 connecting after the server died", func() error {
		if s := stream("cam1"); s.State != api.StreamConnecting || s.LastError == "" || s.Reconnects < 1 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	before := stream("cam1")
	srv.Start()
	waitUntil(t, 30*time.Second, "cam1 running again", func() error {
		if s := stream("cam1"); s.State != api.StreamRunning || s.FramesProcessed <= before.FramesProcessed {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	watch("cam1", 2)

	// The plugin is SIGKILLed: it is relaunched and the sessions resume.
	bs, err := c.Backends(ctx)
	if err != nil || len(bs.Backends) != 1 || bs.Backends[0].PID == 0 {
		t.Fatalf("backends %+v %v", bs, err)
	}
	pid := bs.Backends[0].PID
	before = stream("cam1")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "cam1 resumed after the plugin relaunch", func() error {
		bs, err := c.Backends(ctx)
		if err != nil || bs.Backends[0].PID == pid || bs.Backends[0].State != "ready" {
			return fmt.Errorf("backend %+v %v", bs, err)
		}
		if s := stream("cam1"); s.State != api.StreamRunning || s.Reconnects <= before.Reconnects || s.FramesProcessed <= before.FramesProcessed {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	watch("cam1", 2)

	// A URL that never answers: connecting, with the error, retried.
	silent := videotest.SilentServer(t)
	if _, err := c.AddStream(ctx, api.StreamRequest{ID: "silent", Source: silent}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "silent stream retried", func() error {
		if s := stream("silent"); s.State != api.StreamConnecting || s.LastError == "" || s.Reconnects < 1 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	t.Logf("a stream that never answers: %s", stream("silent").LastError)

	// Bad requests.
	for _, tc := range []struct {
		req    api.StreamRequest
		status int
	}{
		{api.StreamRequest{Source: "http://example.org/a"}, 400},
		{api.StreamRequest{ID: "cam1", Source: srv.URL(false)}, 409},
		{api.StreamRequest{Source: srv.URL(false), Model: "nope"}, 404},
		{api.StreamRequest{ID: "../x", Source: srv.URL(false)}, 400},
	} {
		if _, err := c.AddStream(ctx, tc.req); !api.IsStatus(err, tc.status) {
			t.Errorf("add %+v: %v, want %d", tc.req, err, tc.status)
		}
	}

	out = runCLI(t, azaion, env, "streams", "rm", "cam2", "silent")
	if !strings.Contains(out, "cam2 removed") || !strings.Contains(out, "silent removed") {
		t.Fatalf("streams rm: %s", out)
	}
	if list, err := c.Streams(ctx); err != nil || len(list) != 1 || list[0].ID != "cam1" {
		t.Fatalf("after rm: %+v %v", list, err)
	}

	// Video files through the CLI.
	clip := videotest.Make(t, videotest.Clip{})
	lines := strings.Split(strings.TrimSpace(runCLI(t, azaion, env, "detect", "--json", "--every", "4", clip)), "\n")
	if len(lines) != 1+6+1 || !strings.HasPrefix(lines[0], `{"video":`) || !strings.HasPrefix(lines[7], `{"summary":`) {
		t.Fatalf("detect --json on a 24-frame clip at every 4: %d lines, want header, 6 frames, summary:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	annotated := filepath.Join(dir, "annotated.mp4")
	out = runCLI(t, azaion, env, "detect", "--out", annotated, clip)
	for _, want := range []string{"24 frames decoded", "6 processed", "annotated video: " + annotated} {
		if !strings.Contains(out, want) {
			t.Errorf("detect --out output lacks %q:\n%s", want, out)
		}
	}
	if st := videotest.Probe(t, annotated); st.Frames != 24 || st.Width != 640 {
		t.Errorf("annotated video %+v: want 24 frames of 640x360", st)
	}

	// The password shows nowhere: API answers, metrics, CLI output, logs.
	esc := url.UserPassword("cam", password).String()
	secrets := []string{password, strings.TrimPrefix(esc, "cam:")}
	var texts = map[string]string{"streams ls --json": runCLI(t, azaion, env, "streams", "ls", "--json")}
	for _, p := range []string{"/v1/streams", "/v1/streams/cam1", "/metrics"} {
		resp, err := c.Raw(ctx, http.MethodGet, p, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts[p] = string(b)
	}
	if !strings.Contains(texts["/metrics"], `azaion_stream_frames_total{kind="processed",stream="cam1"}`) {
		t.Errorf("/metrics lacks the stream counters")
	}
	if err := serve.stop(t); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	texts["daemon log"] = serve.logs.String()
	if !strings.Contains(texts["daemon log"], "stream connected") {
		t.Errorf("the daemon log has no stream lines: the check below would prove nothing")
	}
	for name, text := range texts {
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("%s shows the stream password (%q)", name, sec)
			}
		}
	}
}

// runCLIWithin runs one azaion command with stdin, killing it after d; a
// non-zero exit fails the test.
func runCLIWithin(t *testing.T, d time.Duration, azaion string, env []string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, azaion, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("azaion %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
