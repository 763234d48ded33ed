package pluginmgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	sdkplugin "github.com/azaion/edge/sdk/plugin"
)

// stderrTail keeps the last lines a plugin wrote to stderr, so that a
// plugin that dies before or during its handshake is reported with its own
// error rather than go-plugin's.
type stderrTail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

const tailLines = 32

func (t *stderrTail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > tailLines {
			t.lines = t.lines[len(t.lines)-tailLines:]
		}
	}
	if len(t.part) > 64<<10 { // a line without end: keep its start
		t.lines = append(t.lines, string(t.part[:4096]))
		t.part = t.part[:0]
	}
	return len(b), nil
}

// lastError returns the message of the last error the plugin logged
// ("message: error" from an hclog JSON line), or "".
func (t *stderrTail) lastError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.lines) - 1; i >= 0; i-- {
		var l map[string]any
		if json.Unmarshal([]byte(t.lines[i]), &l) != nil {
			continue
		}
		if lvl, _ := l["@level"].(string); lvl != "error" {
			continue
		}
		msg, _ := l["@message"].(string)
		if e, ok := l["error"].(string); ok && e != "" {
			msg += ": " + e
		}
		return msg
	}
	return ""
}

// launchError describes a launch that failed before the handshake ended:
// the plugin's own last error when it logged one, and a configuration error
// when it exited with sdk/plugin.ExitConfig.
func launchError(path string, err error, client *goplugin.Client, cmd *exec.Cmd, tail *stderrTail) error {
	// go-plugin waits for the process in the background: give it a moment
	// to record how the plugin exited.
	for deadline := time.Now().Add(time.Second); !client.Exited() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	msg := tail.lastError()
	if msg == "" {
		msg = err.Error()
	}
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == sdkplugin.ExitConfig {
		return fmt.Errorf("%w: plugin %s: %s", errConfig, path, msg)
	}
	if errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("%w: plugin %s: %s", errConfig, path, msg)
	}
	return fmt.Errorf("launch %s: %s", path, strings.TrimSpace(msg))
}
