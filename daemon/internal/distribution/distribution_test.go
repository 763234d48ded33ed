package distribution_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/edge/daemon/internal/apiclient"
	"github.com/azaion/edge/daemon/internal/apiclient/apitest"
	"github.com/azaion/edge/daemon/internal/cdn"
	"github.com/azaion/edge/daemon/internal/distribution"
	"github.com/azaion/edge/daemon/internal/fingerprint"
	"github.com/azaion/edge/daemon/internal/keys"
	"github.com/azaion/edge/daemon/internal/modelstore"
	"github.com/azaion/edge/internal/testenv"
	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/container"
	"github.com/azaion/edge/sdk/model"
)

var alice = keys.Credentials{Email: "alice@example.com", Password: "correct horse battery"}

// env is one publisher + one edge machine against the fake API and the real
// S3 server.
type env struct {
	api       *apitest.Server
	cdnCfg    cdn.Config
	cdnCred   cdn.Credentials
	publisher *distribution.Service
	hw        string
	stateDir  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{api: apitest.New(t, map[string]string{alice.Email: alice.Password})}
	e.cdnCfg = cdn.Config{
		Endpoint: testenv.Env(t, "AZAION_TEST_S3_ENDPOINT", "the S3 server (versitygw)"),
		Region:   os.Getenv("AZAION_TEST_S3_REGION"),
		Bucket:   fmt.Sprintf("fetch-test-%d", time.Now().UnixNano()),
	}
	e.cdnCred = cdn.Credentials{KeyID: testenv.Env(t, "AZAION_TEST_S3_ACCESS_KEY", "the S3 server"),
		Secret: testenv.Env(t, "AZAION_TEST_S3_SECRET_KEY", "the S3 server")}
	cw, err := cdn.NewWriter(e.cdnCfg, e.cdnCred)
	if err != nil {
		t.Fatal(err)
	}
	e.publisher = &distribution.Service{API: e.client(t, alice), CDNWriter: cw}
	e.hw = fingerprint.Collect(fingerprint.Options{}).Hash
	e.stateDir = t.TempDir()
	return e
}

func (e *env) client(t testing.TB, cred keys.Credentials) *apiclient.Client {
	c, err := apiclient.New(apiclient.Config{URL: e.api.URL, CAFile: e.api.CAFile, Credentials: cred, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// edge returns the pulling side with its own store (a fresh state folder per call).
func (e *env) edge(t testing.TB, cred keys.Credentials, hw string) *distribution.Service {
	t.Helper()
	r, err := cdn.NewReader(e.cdnCfg, e.cdnCred)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.stateDir, fmt.Sprintf("edge-%d", time.Now().UnixNano()))
	st, err := modelstore.Open(filepath.Join(dir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	return &distribution.Service{API: e.client(t, cred), CDN: r, Store: st,
		Keys: modelstore.Keyring{Account: cred, LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: hw}}
}

func (e *env) publish(t *testing.T, name, version string) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Model(t, "yolo11n_int8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.publisher.Publish(context.Background(), b, model.Descriptor{Name: name, Version: version, Format: "onnx"}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) bigPart(t *testing.T, name, version string) []byte {
	r, _ := cdn.NewReader(e.cdnCfg, e.cdnCred)
	var buf bytes.Buffer
	if _, err := r.Download(context.Background(), distribution.BigKey(name, version), &buf, cdn.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) putBig(t *testing.T, name, version string, b []byte) {
	if err := e.publisher.CDNWriter.Upload(context.Background(), distribution.BigKey(name, version), bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func TestPublishPullLoad(t *testing.T) {
	e := newEnv(t)
	orig := e.publish(t, "yolo11n", "1")
	e.publish(t, "yolo11n", "2")
	ctx := context.Background()
	edge := e.edge(t, alice, e.hw)
	var stages []string
	got, err := edge.Pull(ctx, "yolo11n", "1", func(p api.ModelPullProgress) {
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got.Bytes) != sha256.Sum256(orig) {
		t.Fatal("pulled model differs from the original")
	}
	if want := "small big verifying stored"; strings.Join(stages, " ") != want {
		t.Errorf("stages %q, want %q", stages, want)
	}
	t.Run("latest version", func(t *testing.T) {
		p, err := edge.Pull(ctx, "yolo11n", "", nil)
		if err != nil || p.Manifest.Version != "2" {
			t.Fatalf("latest: %v %+v", err, p)
		}
	})
	t.Run("cached while the API is down", func(t *testing.T) {
		e.api.Close()
		p, err := edge.Pull(ctx, "yolo11n", "1", nil)
		if err != nil || !p.Cached || sha256.Sum256(p.Bytes) != sha256.Sum256(orig) {
			t.Fatalf("cached pull: %v", err)
		}
		m, err := edge.Store.Load("yolo11n", "1", edge.Keys)
		if err != nil || !bytes.Equal(m.Bytes, orig) {
			t.Fatalf("load from store: %v", err)
		}
		list, _ := edge.Store.List()
		if len(list) != 2 || list[0].ID() != "yolo11n:1" || list[1].ID() != "yolo11n:2" {
			t.Fatalf("store list %+v", list)
		}
	})
}

// TestNoPlaintextOnDisk scans the state folder and TMPDIR after a pull and
// a load for any 64-byte window of the model.
func TestNoPlaintextOnDisk(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	e := newEnv(t)
	orig := e.publish(t, "scan", "1")
	edge := e.edge(t, alice, e.hw)
	if _, err := edge.Pull(context.Background(), "scan", "1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.Store.Load("scan", "1", edge.Keys); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.Store.Import(orig, model.Descriptor{Name: "scan-import", Version: "1"}, edge.Keys, modelstore.KeyLocal); err != nil {
		t.Fatal(err)
	}
	// Any 64-byte window of the plaintext contains a whole 32-byte chunk at a
	// 32-aligned offset: index those (skipping uniform ones, e.g. zero runs)
	// and look for each at every offset of every file.
	chunks := map[[32]byte]bool{}
	prefixes := map[uint64]bool{}
	for i := 0; i+32 <= len(orig); i += 32 {
		c := [32]byte(orig[i : i+32])
		if bytes.Count(c[:], c[:1]) == 32 {
			continue
		}
		chunks[c] = true
		prefixes[binary.LittleEndian.Uint64(c[:8])] = true
	}
	files := 0
	for _, root := range []string{e.stateDir, tmp} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for i := 0; i+32 <= len(b); i++ {
				if prefixes[binary.LittleEndian.Uint64(b[i:i+8])] && chunks[[32]byte(b[i:i+32])] {
					t.Fatalf("plaintext found in %s at offset %d", p, i)
				}
			}
			return nil
		})
	}
	if files < 6 {
		t.Fatalf("scanned only %d files", files)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, name string)
		cred    keys.Credentials
		hw      string
		wantErr error
		wantMsg string
	}{
		{name: "flipped byte in small part", setup: func(t *testing.T, n string) {
			s := e.api.Resource(distribution.Folder, distribution.SmallName(n, "1"))
			e.api.SetResource(distribution.Folder, distribution.SmallName(n, "1"), flip(s, len(s)-200))
		}, wantErr: container.ErrAuth, wantMsg: "small part"},
		{name: "flipped byte in big part", setup: func(t *testing.T, n string) {
			b := e.bigPart(t, n, "1")
			e.putBig(t, n, "1", flip(b, len(b)/2))
		}, wantErr: container.ErrAuth, wantMsg: "big part"},
		{name: "truncated small part", setup: func(t *testing.T, n string) {
			s := e.api.Resource(distribution.Folder, distribution.SmallName(n, "1"))
			e.api.SetResource(distribution.Folder, distribution.SmallName(n, "1"), s[:len(s)-10])
		}, wantErr: container.ErrTruncated, wantMsg: "small part"},
		{name: "truncated big part", setup: func(t *testing.T, n string) {
			b := e.bigPart(t, n, "1")
			e.putBig(t, n, "1", b[:len(b)-1000])
		}, wantErr: container.ErrTruncated, wantMsg: "big part"},
		{name: "small part swapped from another model", setup: func(t *testing.T, n string) {
			e.publish(t, n+"-other", "1")
			e.api.SetResource(distribution.Folder, distribution.SmallName(n, "1"), e.api.Resource(distribution.Folder, distribution.SmallName(n+"-other", "1")))
		}, wantErr: container.ErrMismatch, wantMsg: "different models"},
		{name: "small part of another build of the same version", setup: func(t *testing.T, n string) {
			s, err := container.Seal([]byte("another model"), model.Descriptor{Name: n, Version: "1"}, container.SealOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.api.SetResource(distribution.Folder, distribution.SmallName(n, "1"), s.Small)
		}, wantErr: container.ErrMismatch, wantMsg: "different models"},
		{name: "wrong hardware hash", setup: func(t *testing.T, n string) {
			e.api.BindHardware(alice.Email, e.hw)
		}, hw: other, wantErr: apiclient.ErrForbidden, wantMsg: "not allow this machine"},
		{name: "wrong password", cred: keys.Credentials{Email: alice.Email, Password: "wrong"},
			wantErr: apiclient.ErrLogin, wantMsg: "wrong e-mail or password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("refused-%d", time.Now().UnixNano())
			e.publish(t, name, "1")
			tc.setup = orNop(tc.setup)
			tc.setup(t, name)
			defer e.api.BindHardware(alice.Email, "")
			cred, hw := alice, e.hw
			if tc.cred.Email != "" {
				cred = tc.cred
			}
			if tc.hw != "" {
				hw = tc.hw
			}
			edge := e.edge(t, cred, hw)
			got, err := edge.Pull(ctx, name, "1", nil)
			if err == nil || got != nil {
				t.Fatalf("pull accepted: %v", err)
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q: want %v saying %q", err, tc.wantErr, tc.wantMsg)
			}
			if list, _ := edge.Store.List(); len(list) != 0 {
				t.Fatalf("a refused model was stored: %+v", list)
			}
			if ents, _ := os.ReadDir(edge.Store.Root()); len(ents) != 0 {
				t.Fatalf("a refused model left files: %v", ents)
			}
		})
	}
}

func orNop(f func(*testing.T, string)) func(*testing.T, string) {
	if f == nil {
		return func(*testing.T, string) {}
	}
	return f
}

// TestStoreRefused covers the local store after a good pull: the parts are
// copied to another machine, the password changed, or the files damaged.
func TestStoreRefused(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "m", "1")
	e.publish(t, "n", "1")
	ctx := context.Background()
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name    string
		mutate  func(t *testing.T, dir string, kr *modelstore.Keyring)
		wantErr error
		wantMsg string
	}{
		{"copied to another machine", func(t *testing.T, dir string, kr *modelstore.Keyring) { kr.HardwareHash = other },
			keys.ErrWrongHardware, "another machine"},
		{"wrong password", func(t *testing.T, dir string, kr *modelstore.Keyring) { kr.Account.Password = "changed" },
			keys.ErrWrongCredentials, "wrong e-mail or password"},
		{"flipped byte in small part", func(t *testing.T, dir string, kr *modelstore.Keyring) {
			mutateFile(t, filepath.Join(dir, "m", "1", modelstore.SmallFile), func(b []byte) []byte { return flip(b, len(b)/2) })
		}, keys.ErrEnvelope, "small part"},
		{"flipped byte in big part", func(t *testing.T, dir string, kr *modelstore.Keyring) {
			mutateFile(t, filepath.Join(dir, "m", "1", modelstore.BigFile), func(b []byte) []byte { return flip(b, len(b)-5) })
		}, container.ErrAuth, "big part"},
		{"truncated big part", func(t *testing.T, dir string, kr *modelstore.Keyring) {
			mutateFile(t, filepath.Join(dir, "m", "1", modelstore.BigFile), func(b []byte) []byte { return b[:len(b)/2] })
		}, container.ErrTruncated, "big part"},
		{"small part swapped from another model", func(t *testing.T, dir string, kr *modelstore.Keyring) {
			s, _ := os.ReadFile(filepath.Join(dir, "n", "1", modelstore.SmallFile))
			mutateFile(t, filepath.Join(dir, "m", "1", modelstore.SmallFile), func([]byte) []byte { return s })
		}, container.ErrMismatch, "different models"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := e.edge(t, alice, e.hw)
			for _, n := range []string{"m", "n"} {
				if _, err := edge.Pull(ctx, n, "1", nil); err != nil {
					t.Fatal(err)
				}
			}
			kr := edge.Keys
			tc.mutate(t, edge.Store.Root(), &kr)
			got, err := edge.Store.Load("m", "1", kr)
			if err == nil || got != nil {
				t.Fatal("load accepted")
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q: want %v saying %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func mutateFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestResumePartial: a pull interrupted earlier (bytes left in big.part)
// asks the CDN only for the rest.
func TestResumePartial(t *testing.T) {
	e := newEnv(t)
	orig := e.publish(t, "resume", "1")
	big := e.bigPart(t, "resume", "1")
	edge := e.edge(t, alice, e.hw)
	w, err := edge.Store.Create("resume", "1")
	if err != nil {
		t.Fatal(err)
	}
	const have = 1 << 20
	w.Big().Write(big[:have])
	w.Abort(true)
	var starts []int64
	edge.OnRequest = func(s int64) { starts = append(starts, s) }
	got, err := edge.Pull(context.Background(), "resume", "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes, orig) {
		t.Fatal("resumed pull differs")
	}
	if len(starts) != 1 || starts[0] != have {
		t.Fatalf("CDN requests started at %v, want [%d]", starts, have)
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	st, _ := modelstore.Open(filepath.Join(dir, "models"))
	kr := modelstore.Keyring{LocalKeyFile: filepath.Join(dir, "keys", "local.key"), HardwareHash: strings.Repeat("cd", 32)}
	b, _ := os.ReadFile(testenv.Model(t, "yolo11n_int8.onnx"))
	if _, err := st.Import(b, model.Descriptor{Name: "local", Version: "1"}, kr, modelstore.KeyLocal); err != nil {
		t.Fatal(err)
	}
	m, err := st.Load("local", "1", kr)
	if err != nil || !bytes.Equal(m.Bytes, b) {
		t.Fatalf("load: %v", err)
	}
	var rd bytes.Buffer
	io.Copy(&rd, m.Reader())
	if rd.Len() != len(b) {
		t.Fatal("reader")
	}
}

// TestConcurrentPulls: two pulls of the same version at once both succeed
// and store it once.
func TestConcurrentPulls(t *testing.T) {
	e := newEnv(t)
	orig := e.publish(t, "twice", "1")
	edge := e.edge(t, alice, e.hw)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			p, err := edge.Pull(context.Background(), "twice", "1", nil)
			if err == nil && !bytes.Equal(p.Bytes, orig) {
				err = errors.New("pulled bytes differ")
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := edge.Store.List(); len(list) != 1 {
		t.Fatalf("store holds %d versions", len(list))
	}
}

// TestResumeComplete: a pull that crashed between the last byte and the
// commit (big.part holds the whole big part) verifies what is there and
// commits without fetching anything; a big.part longer than the big part
// is discarded and fetched again.
func TestResumeComplete(t *testing.T) {
	e := newEnv(t)
	orig := e.publish(t, "complete", "1")
	big := e.bigPart(t, "complete", "1")
	for _, tc := range []struct {
		name   string
		held   []byte
		starts []int64
	}{
		{"every byte held", big, nil},
		{"more bytes than the big part", append(bytes.Clone(big), "trailing"...), []int64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := e.edge(t, alice, e.hw)
			w, err := edge.Store.Create("complete", "1")
			if err != nil {
				t.Fatal(err)
			}
			w.Big().Write(tc.held)
			w.Abort(true)
			var starts []int64
			edge.OnRequest = func(s int64) { starts = append(starts, s) }
			got, err := edge.Pull(context.Background(), "complete", "1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes, orig) {
				t.Fatal("pulled model differs")
			}
			if fmt.Sprint(starts) != fmt.Sprint(tc.starts) {
				t.Fatalf("CDN requests started at %v, want %v", starts, tc.starts)
			}
			if m, err := edge.Store.Load("complete", "1", edge.Keys); err != nil || !bytes.Equal(m.Bytes, orig) {
				t.Fatalf("load after the pull: %v", err)
			}
		})
	}
}

// TestDamagedCopyPulledAgain: a stored version that fails verification is
// discarded by the next pull, which says so and fetches it again.
func TestDamagedCopyPulledAgain(t *testing.T) {
	e := newEnv(t)
	orig := e.publish(t, "damaged", "1")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"flipped byte in big.bin", func(dir string) {
			mutateFile(t, filepath.Join(dir, modelstore.BigFile), func(b []byte) []byte { return flip(b, len(b)/3) })
		}, "authentication failed"},
		{"truncated small.enc", func(dir string) {
			mutateFile(t, filepath.Join(dir, modelstore.SmallFile), func(b []byte) []byte { return b[:len(b)/2] })
		}, "small part"},
		{"big.bin missing", func(dir string) { os.Remove(filepath.Join(dir, modelstore.BigFile)) }, "big part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := e.edge(t, alice, e.hw)
			if _, err := edge.Pull(ctx, "damaged", "1", nil); err != nil {
				t.Fatal(err)
			}
			tc.damage(filepath.Join(edge.Store.Root(), "damaged", "1"))
			if _, err := edge.Store.Load("damaged", "1", edge.Keys); !errors.Is(err, modelstore.ErrDamaged) {
				t.Fatalf("load of the damaged copy: %v, want ErrDamaged", err)
			}
			var discarded []api.ModelPullProgress
			got, err := edge.Pull(ctx, "damaged", "1", func(p api.ModelPullProgress) {
				if p.Stage == api.PullDiscarded {
					discarded = append(discarded, p)
				}
			})
			if err != nil {
				t.Fatalf("pull after the damage: %v", err)
			}
			if got.Cached || !bytes.Equal(got.Bytes, orig) {
				t.Fatalf("pull after the damage: cached %v, same bytes %v", got.Cached, bytes.Equal(got.Bytes, orig))
			}
			if len(discarded) != 1 || !strings.Contains(discarded[0].Error, tc.want) {
				t.Fatalf("discarded reports %+v, want one saying %q", discarded, tc.want)
			}
			again, err := edge.Pull(ctx, "damaged", "1", nil)
			if err != nil || !again.Cached || !bytes.Equal(again.Bytes, orig) {
				t.Fatalf("pull of the fetched-again copy: %v", err)
			}
		})
	}
}
