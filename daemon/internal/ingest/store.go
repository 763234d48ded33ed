package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azaion/edge/internal/atomicfile"
	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/dataroot"
	"github.com/azaion/edge/sdk/yololabel"
)

// Folders of the ingest's own under the data root (the data root's layout,
// data-seed/, data/ and data_deleted/ included, is sdk/dataroot).
const (
	RejectsDir = "rejects"
	tmpDir     = ".ingest-tmp"
)

// folders are the data root folders the ingest writes.
var folders = []string{dataroot.Data, dataroot.Seed, dataroot.Deleted}

// Message is one stream message: its offset and its body.
type Message struct {
	// Offset is the message's stream offset.
	Offset int64
	// Body is the msgpack message.
	Body []byte
}

// Reject is a message set aside in rejects/.
type Reject struct {
	// Offset is the message's stream offset.
	Offset int64
	// Reason is the kind of problem (annotation.Reason or a state reason).
	Reason string
	// Msg is the one-line explanation.
	Msg string
}

// Reasons for messages that decode but cannot be applied to what is on disk.
const (
	ReasonNoImage    = "no-image"
	ReasonNotFound   = "not-found"
	ReasonWriteError = "write-error"
)

// BatchResult says what ApplyBatch did.
type BatchResult struct {
	// Applied counts messages whose effect is on disk.
	Applied int
	// Rejected lists the messages set aside.
	Rejected []Reject
}

// Store applies annotation events to the data root durably: every file is
// written under a temporary name, made durable and renamed, and ApplyBatch
// returns only after the renames are durable too (one syncfs(2) per phase, or
// an fsync of every file and folder: see SyncFS and SyncFiles).
// Applying the same messages again leaves the same files (idempotent), so a
// replay after a crash is harmless.
type Store struct {
	root   string
	decode annotation.DecodeOptions
	// workers bounds the concurrent file operations of one batch.
	workers int
	// work holds one folder per worker for the new files of a batch
	// (under tmpDir, named afresh at each start: see NewStore).
	work []string
	// syncfs makes a batch durable with one syncfs(2) of the data root's
	// file system instead of one fsync per file and folder.
	syncfs bool
	// tmpfile writes new files unnamed (O_TMPFILE) and links them into
	// place: one directory entry per file instead of a temporary name and a
	// rename (Linux, with syncfs, where the data root's file system can).
	tmpfile bool
	// lock is the data root's lock (LockFile), held until Close.
	lock *rootLock
}

// errNoTmpfile says the system cannot write unnamed files (O_TMPFILE).
var errNoTmpfile = errors.New("unnamed temporary files (O_TMPFILE) are not supported here")

// Sync strategies: how a batch's files are made durable.
const (
	// SyncFS flushes the data root's file system once per phase with
	// syncfs(2) (Linux only; the default there).
	SyncFS = "syncfs"
	// SyncFiles fsyncs every file and folder, 16 at a time.
	SyncFiles = "fsync"
)

// NewStore locks the data root (LockFile: ErrDataRootBusy when another
// ingest holds it), prepares the folders under it and clears leftover
// temporary files. sync is SyncFS, SyncFiles or "" (SyncFS where
// available). Close releases the lock.
func NewStore(root string, decode annotation.DecodeOptions, sync string) (s *Store, err error) {
	s = &Store{root: root, decode: decode, workers: 8}
	switch sync {
	case "", SyncFS:
		s.syncfs = haveSyncFS
	case SyncFiles:
	default:
		return nil, fmt.Errorf("sync strategy %q is not %s or %s", sync, SyncFS, SyncFiles)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("data root: %w", err)
	}
	// The lock comes before anything is cleared: the temporary folder may
	// hold another running ingest's files.
	if s.lock, err = lockRoot(root); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.lock.release()
		}
	}()
	tmp := filepath.Join(root, tmpDir)
	dirs := []string{filepath.Join(root, RejectsDir), tmp}
	for _, f := range folders {
		dirs = append(dirs, filepath.Join(root, f, dataroot.Images), filepath.Join(root, f, dataroot.Labels))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("data root: %w", err)
		}
	}
	// Leftovers of an earlier run: temporary files and worker folders.
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("data root: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return nil, fmt.Errorf("data root: clear temporary files: %w", err)
		}
	}
	// The worker folders are spread over the file system (see
	// spreadSubfolders) and named afresh, so that each start places them
	// anew: a new file's inode is allocated near its folder's.
	spreadSubfolders(tmp)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for w := 0; w < s.workers; w++ {
		d := filepath.Join(tmp, run+"-"+strconv.Itoa(w))
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("data root: %w", err)
		}
		s.work = append(s.work, d)
	}
	s.tmpfile = s.syncfs && canTmpfile(tmp)
	return s, nil
}

// canTmpfile reports whether unnamed files can be written in dir and linked
// to a name (O_TMPFILE and linkat work there).
func canTmpfile(dir string) bool {
	f, err := openTmpfile(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	probe := filepath.Join(dir, ".tmpfile-probe")
	_ = os.Remove(probe)
	if err := linkTmpfile(f, probe); err != nil {
		return false
	}
	_ = os.Remove(probe)
	return true
}

// Root returns the data root.
func (s *Store) Root() string { return s.root }

// Close releases the data root's lock; the store must not be used after.
func (s *Store) Close() { s.lock.release() }

// pending is one message prepared for the apply phase.
type pending struct {
	msg    Message
	a      *annotation.Annotation
	reject *Reject
	// files written in the prepare phase (nil when none).
	img, label, rejMsg, rejTxt *prepJob
}

// ApplyBatch applies msgs in order. Phase 1 writes every new file's content
// to a temporary file; phase 2 makes them durable (one syncfs, or fsyncs run
// concurrently so the file system commits them together); phase 3 applies
// each message with renames, in order for each name and names concurrently;
// phase 4 makes the renames durable (syncfs, or an fsync of every folder
// touched). An error
// means the batch may be partly applied and must be retried (it is
// idempotent); bad messages are not errors but rejects.
func (s *Store) ApplyBatch(msgs []Message) (BatchResult, error) {
	p, err := s.Prepare(msgs)
	if err != nil {
		return BatchResult{}, err
	}
	return s.Commit(p)
}

// Prepared is a batch whose temporary files are written (phase 1 of
// ApplyBatch) but not yet durable or in place. Preparing the next batch
// while the previous one commits is safe: preparing reads nothing but the
// messages and writes only temporary files named after their offsets.
type Prepared struct {
	ps   []*pending
	jobs []*prepJob
}

// prepJob is one new file: written in the prepare phase, either under a
// temporary name (path) or unnamed (O_TMPFILE, until it is placed).
type prepJob struct {
	path    string
	data    []byte
	f       *os.File
	unnamed bool
}

// Close releases a prepared batch that will not be committed.
func (p *Prepared) Close() {
	for _, j := range p.jobs {
		if j.f != nil {
			j.f.Close()
			j.f = nil
		}
	}
}

// Prepare decodes msgs and writes their temporary files (phase 1).
func (s *Store) Prepare(msgs []Message) (*Prepared, error) {
	pr := &Prepared{ps: make([]*pending, len(msgs))}
	add := func(name string, data []byte) *prepJob {
		j := &prepJob{path: name, data: data}
		pr.jobs = append(pr.jobs, j)
		return j
	}
	for i, m := range msgs {
		p := &pending{msg: m}
		pr.ps[i] = p
		off := strconv.FormatInt(m.Offset, 10)
		a, err := annotation.Decode(m.Body, s.decode)
		if err != nil {
			r := rejectOf(m.Offset, err)
			p.reject = &r
			p.rejMsg = add(off+".rej.msgpack", m.Body)
			p.rejTxt = add(off+".rej.txt", []byte(r.line()))
			continue
		}
		p.a = a
		if len(a.Image) > 0 && (a.Op == annotation.Created || a.Op == annotation.Validated) {
			p.img = add(off+".img", a.Image)
		}
		if a.Op != annotation.Deleted {
			p.label = add(off+".txt", labelBytes(a.Labels))
		}
	}
	// Each worker creates its files in its own folder (creations in one
	// folder serialise on the folder's lock) and takes the next job when it
	// is done, so that a slow folder slows only its worker.
	jobs := pr.jobs
	var next atomic.Int64
	err := parallel(min(s.workers, len(jobs)), s.workers, func(w int) error {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(jobs) {
				return nil
			}
			j := jobs[i]
			j.path = filepath.Join(s.work[w], j.path)
			var f *os.File
			var err error
			if s.tmpfile {
				// Unnamed: no directory entry until it is placed.
				f, err = openTmpfile(s.work[w])
				j.unnamed = err == nil
			}
			if f == nil {
				f, err = os.OpenFile(j.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			}
			if err != nil {
				return err
			}
			j.f = f
			if _, err := f.Write(j.data); err != nil {
				return fmt.Errorf("write %s: %w", j.path, err)
			}
		}
	})
	if err != nil {
		pr.Close()
		return nil, err
	}
	return pr, nil
}

// Commit makes a prepared batch durable and applies it in order (phases 2
// to 4 of ApplyBatch). Batches must be committed in stream order.
func (s *Store) Commit(pr *Prepared) (BatchResult, error) {
	defer pr.Close()
	var res BatchResult
	ps, jobs := pr.ps, pr.jobs
	// Phase 2: make the temporary files durable.
	files := make([]*os.File, len(jobs))
	for i, j := range jobs {
		files[i] = j.f
	}
	if err := s.syncFiles(files); err != nil {
		return res, err
	}
	// Phase 3: apply each message with renames: in order for each name, names
	// concurrently (an annotation's events only touch its own files).
	groups := make([][]*pending, s.workers)
	for _, p := range ps {
		key := ""
		if p.a != nil {
			key = p.a.Name
		} else {
			key = strconv.FormatInt(p.msg.Offset, 10)
		}
		g := int(fnv32(key) % uint32(len(groups)))
		groups[g] = append(groups[g], p)
	}
	touchedBy := make([]map[string]bool, len(groups))
	applied := make([]bool, len(ps))
	index := make(map[*pending]int, len(ps))
	for i, p := range ps {
		index[p] = i
	}
	err := parallel(len(groups), len(groups), func(g int) error {
		touched := map[string]bool{}
		touchedBy[g] = touched
		for _, p := range groups[g] {
			if p.reject != nil {
				if err := s.placeReject(p, touched); err != nil {
					return err
				}
				continue
			}
			r, err := s.apply(p, touched)
			if err != nil {
				return err
			}
			if r != nil {
				p.reject = r
				if err := s.writeStateReject(p, touched); err != nil {
					return err
				}
				continue
			}
			applied[index[p]] = true
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for i, p := range ps {
		if applied[i] {
			res.Applied++
		} else if p.reject != nil {
			res.Rejected = append(res.Rejected, *p.reject)
		}
	}
	// Phase 4: make the renames durable (fsync of the folders touched).
	touched := map[string]bool{}
	for _, m := range touchedBy {
		for d := range m {
			touched[d] = true
		}
	}
	dirs := make([]string, 0, len(touched))
	for d := range touched {
		dirs = append(dirs, d)
	}
	if err := s.syncDirs(dirs); err != nil {
		return res, err
	}
	return res, nil
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func (r Reject) line() string {
	return fmt.Sprintf("offset %d: %s: %s\n", r.Offset, r.Reason, r.Msg)
}

func rejectOf(off int64, err error) Reject {
	var e *annotation.Error
	if errors.As(err, &e) {
		return Reject{Offset: off, Reason: string(e.Reason), Msg: e.Msg}
	}
	return Reject{Offset: off, Reason: "invalid", Msg: strings.ReplaceAll(err.Error(), "\n", " ")}
}

func labelBytes(boxes []annotation.Box) []byte {
	yb := make([]yololabel.Box, len(boxes))
	for i, b := range boxes {
		yb[i] = yololabel.Box{Class: b.Class, CX: b.CX, CY: b.CY, W: b.W, H: b.H}
	}
	return yololabel.Format(yb)
}

func (s *Store) path(folder, kind, file string) string {
	return filepath.Join(s.root, folder, kind, file)
}

// place gives a prepared (durable) file its final name to, replacing a file
// there atomically. An unnamed file is linked there: one new directory entry.
// When to exists (a replay, an edit) it is linked under its temporary name
// and renamed over to, so that to always names a whole file.
func (s *Store) place(j *prepJob, to string, touched map[string]bool) error {
	if !j.unnamed {
		return s.rename(j.path, to, touched)
	}
	err := linkTmpfile(j.f, to)
	if err == nil {
		touched[filepath.Dir(to)] = true
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove: %w", err)
	}
	if err := linkTmpfile(j.f, j.path); err != nil {
		return err
	}
	return s.rename(j.path, to, touched)
}

// rename moves from to to and marks both folders touched.
func (s *Store) rename(from, to string, touched map[string]bool) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	touched[filepath.Dir(from)] = true
	touched[filepath.Dir(to)] = true
	return nil
}

// remove deletes path if it exists. It looks first: a lookup does not take
// the folder's lock, an unlink does even when there is nothing to remove.
func (s *Store) remove(path string, touched map[string]bool) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err := os.Remove(path)
	if err == nil {
		touched[filepath.Dir(path)] = true
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("remove: %w", err)
}

// findImage returns the folder and extension of name's image, searching
// folders in order ("" when there is none).
func (s *Store) findImage(name string, in ...string) (folder, ext string) {
	for _, f := range in {
		for _, e := range dataroot.ImageExts {
			if _, err := os.Lstat(s.path(f, dataroot.Images, name+"."+e)); err == nil {
				return f, e
			}
		}
	}
	return "", ""
}

// clearExcept removes name's image and label from every folder, except the
// image keepImg and the label keepLabel (full paths).
func (s *Store) clearExcept(name, keepImg, keepLabel string, touched map[string]bool) error {
	for _, f := range folders {
		for _, e := range dataroot.ImageExts {
			if p := s.path(f, dataroot.Images, name+"."+e); p != keepImg {
				if err := s.remove(p, touched); err != nil {
					return err
				}
			}
		}
		if p := s.path(f, dataroot.Labels, name+".txt"); p != keepLabel {
			if err := s.remove(p, touched); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply performs one decoded message's renames. It returns a reject when the
// message cannot apply to what is on disk.
func (s *Store) apply(p *pending, touched map[string]bool) (*Reject, error) {
	a := p.a
	label := a.Name + ".txt"
	switch a.Op {
	case annotation.Created, annotation.Validated:
		target := dataroot.Seed
		if a.Op == annotation.Validated {
			target = dataroot.Data
		}
		img := s.path(target, dataroot.Images, a.Name+"."+a.ImageFormat)
		if p.img != nil {
			if err := s.place(p.img, img, touched); err != nil {
				return nil, err
			}
		} else {
			// Validated without an image: move the one ingested before.
			f, e := s.findImage(a.Name, target, dataroot.Seed, dataroot.Data, dataroot.Deleted)
			if f == "" {
				s.discard(p)
				return &Reject{Offset: p.msg.Offset, Reason: ReasonNoImage,
					Msg: fmt.Sprintf("validated %q carries no image and none was ingested before", a.Name)}, nil
			}
			img = s.path(target, dataroot.Images, a.Name+"."+e)
			if f != target {
				if err := s.rename(s.path(f, dataroot.Images, a.Name+"."+e), img, touched); err != nil {
					return nil, err
				}
			}
		}
		lbl := s.path(target, dataroot.Labels, label)
		if err := s.place(p.label, lbl, touched); err != nil {
			return nil, err
		}
		return nil, s.clearExcept(a.Name, img, lbl, touched)
	case annotation.Edited:
		f, _ := s.findImage(a.Name, dataroot.Data, dataroot.Seed, dataroot.Deleted)
		if f == "" {
			s.discard(p)
			return &Reject{Offset: p.msg.Offset, Reason: ReasonNotFound,
				Msg: fmt.Sprintf("edited %q: no annotation of that name in %s, %s or %s", a.Name, dataroot.Data, dataroot.Seed, dataroot.Deleted)}, nil
		}
		return nil, s.place(p.label, s.path(f, dataroot.Labels, label), touched)
	case annotation.Deleted:
		for _, f := range []string{dataroot.Seed, dataroot.Data} {
			for _, e := range dataroot.ImageExts {
				from := s.path(f, dataroot.Images, a.Name+"."+e)
				if _, err := os.Lstat(from); err == nil {
					if err := s.rename(from, s.path(dataroot.Deleted, dataroot.Images, a.Name+"."+e), touched); err != nil {
						return nil, err
					}
				}
			}
			from := s.path(f, dataroot.Labels, label)
			if _, err := os.Lstat(from); err == nil {
				if err := s.rename(from, s.path(dataroot.Deleted, dataroot.Labels, label), touched); err != nil {
					return nil, err
				}
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("operation %v", a.Op)
}

// discard removes a message's unused temporary files (unnamed ones vanish
// when the batch is closed).
func (s *Store) discard(p *pending) {
	for _, j := range []*prepJob{p.img, p.label} {
		if j != nil && !j.unnamed {
			_ = os.Remove(j.path)
		}
	}
}

func (s *Store) placeReject(p *pending, touched map[string]bool) error {
	off := strconv.FormatInt(p.msg.Offset, 10)
	if err := s.place(p.rejMsg, s.path(RejectsDir, "", off+".msgpack"), touched); err != nil {
		return err
	}
	return s.place(p.rejTxt, s.path(RejectsDir, "", off+".txt"), touched)
}

// writeStateReject sets aside a message rejected in the apply phase (rare:
// its files are written and fsynced one by one).
func (s *Store) writeStateReject(p *pending, touched map[string]bool) error {
	off := strconv.FormatInt(p.msg.Offset, 10)
	for _, f := range []struct {
		name string
		data []byte
	}{{off + ".msgpack", p.msg.Body}, {off + ".txt", []byte(p.reject.line())}} {
		tmp := filepath.Join(s.root, tmpDir, "state-"+f.name)
		if err := writeSync(tmp, f.data); err != nil {
			return err
		}
		if err := s.rename(tmp, s.path(RejectsDir, "", f.name), touched); err != nil {
			return err
		}
	}
	return nil
}

// writeSync writes data to path and fsyncs it.
func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

func (s *Store) syncFiles(files []*os.File) error {
	if s.syncfs && len(files) > 0 {
		return syncFS(files[0])
	}
	return parallel(len(files), s.workers, func(i int) error {
		if err := files[i].Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", files[i].Name(), err)
		}
		return nil
	})
}

func (s *Store) syncDirs(dirs []string) error {
	if s.syncfs && len(dirs) > 0 {
		d, err := os.Open(s.root)
		if err != nil {
			return err
		}
		defer d.Close()
		return syncFS(d)
	}
	return parallel(len(dirs), s.workers, func(i int) error { return atomicfile.SyncDir(dirs[i]) })
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	if n == 0 {
		return nil
	}
	if workers > n {
		workers = n
	}
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}
