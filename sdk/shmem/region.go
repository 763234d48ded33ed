// Package shmem is the shared-memory path for image bytes between the daemon
// and its detection plugins (issue 10): the daemon creates one anonymous
// memory region (a memfd: it never appears in the filesystem), reads request
// bodies straight into slots of it (Pool), and passes the region's file
// descriptor to each backend plugin it launches (fd 3, named by the
// environment: EnvFD, EnvSize). The plugin maps it read-only (FromEnv) and
// reads an image where the daemon wrote it, so the bytes never cross the
// plugin's gRPC connection: the request carries only (offset, length).
package shmem

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Environment variables naming the region in a plugin process.
const (
	// EnvFD is the region's file descriptor number in the plugin (ChildFD).
	EnvFD = "AZAION_SHARED_IMAGES_FD"
	// EnvSize is the region's size in bytes.
	EnvSize = "AZAION_SHARED_IMAGES_SIZE"
)

// ChildFD is the descriptor number the region has in a plugin process: the
// first of exec.Cmd.ExtraFiles.
const ChildFD = 3

// Region is a shared memory region mapped into this process: read-write in
// the daemon (Create), read-only in a plugin (Open, FromEnv).
type Region struct {
	// mem, file and id never change after Open or Create (Offset may run
	// concurrently with Close); closeOnce guards the unmapping.
	file      *os.File
	mem       []byte
	id        string
	closeOnce sync.Once
}

// Create makes a region of size bytes, mapped read-write. Its size cannot
// change afterwards and no one can map it writable again (the memfd is
// sealed), so a plugin can neither write nor shrink it under the daemon.
func Create(size int) (*Region, error) {
	if size <= 0 {
		return nil, fmt.Errorf("shared images: size %d is not positive", size)
	}
	fd, err := unix.MemfdCreate("azaion-images", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("shared images: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "azaion-images")
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("shared images: size the region: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shared images: map %d bytes: %w", size, err)
	}
	// F_SEAL_FUTURE_WRITE (Linux 5.1) leaves this mapping writable and
	// refuses every later writable one; older kernels get the size seals.
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_FUTURE_WRITE|unix.F_SEAL_SEAL); err != nil {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_SEAL); err != nil {
			unix.Munmap(mem)
			f.Close()
			return nil, fmt.Errorf("shared images: seal the region: %w", err)
		}
	}
	r := &Region{file: f, mem: mem}
	if r.id, err = fileID(f); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Open maps the region behind f (size bytes) read-only. It takes f over.
func Open(f *os.File, size int) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("shared images: fd %d: %w", f.Fd(), err)
	}
	if size <= 0 || st.Size != int64(size) {
		f.Close()
		return nil, fmt.Errorf("shared images: fd %d holds %d bytes, want %d", f.Fd(), st.Size, size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shared images: map fd %d: %w", f.Fd(), err)
	}
	r := &Region{file: f, mem: mem}
	if r.id, err = fileID(f); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// ErrNoRegion is FromEnv's error when the process was given no region.
var ErrNoRegion = errors.New("shared images: no region in the environment")

// FromEnv maps read-only the region the daemon passed to this plugin
// process (EnvFD, EnvSize); ErrNoRegion when there is none.
func FromEnv() (*Region, error) {
	fdv, sizev := os.Getenv(EnvFD), os.Getenv(EnvSize)
	if fdv == "" || sizev == "" {
		return nil, ErrNoRegion
	}
	fd, err := strconv.Atoi(fdv)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("shared images: %s=%q is not a descriptor number", EnvFD, fdv)
	}
	size, err := strconv.Atoi(sizev)
	if err != nil || size <= 0 {
		return nil, fmt.Errorf("shared images: %s=%q is not a size", EnvSize, sizev)
	}
	unix.CloseOnExec(fd) // what the plugin starts (a runtime's helpers) does not inherit it
	return Open(os.NewFile(uintptr(fd), "azaion-images"), size)
}

// fileID names the region's memfd by device and inode: both sides of a
// plugin connection compute it from their descriptor, so equal IDs mean the
// plugin mapped this very region.
func fileID(f *os.File) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", fmt.Errorf("shared images: stat: %w", err)
	}
	return fmt.Sprintf("memfd:%d:%d:%d", st.Dev, st.Ino, st.Size), nil
}

// ID identifies the region (the same in the daemon and its plugins).
func (r *Region) ID() string { return r.id }

// Size is the region's size in bytes.
func (r *Region) Size() int { return len(r.mem) }

// File is the region's descriptor, to pass to a plugin (exec.Cmd.ExtraFiles).
func (r *Region) File() *os.File { return r.file }

// Env is the environment that names the region in a plugin started with
// File as its first extra file.
func (r *Region) Env() []string {
	return []string{EnvFD + "=" + strconv.Itoa(ChildFD), EnvSize + "=" + strconv.Itoa(len(r.mem))}
}

// Offset returns where b lies in the region when all of it does.
func (r *Region) Offset(b []byte) (int, bool) {
	if len(b) == 0 || len(r.mem) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p-base > uintptr(len(r.mem)) || uintptr(len(b)) > uintptr(len(r.mem))-(p-base) {
		return 0, false
	}
	return int(p - base), true
}

// Bytes returns the n bytes at off, a view of the mapping (capacity n), or
// an error naming the bad reference.
func (r *Region) Bytes(off, n uint64) ([]byte, error) {
	size := uint64(len(r.mem))
	if n == 0 || off > size || n > size-off {
		return nil, fmt.Errorf("shared images: %d bytes at %d are outside the %d-byte region", n, off, size)
	}
	return r.mem[off : off+n : off+n], nil
}

// Close unmaps the region and closes its descriptor; no view of it may be
// used afterwards.
func (r *Region) Close() error {
	var err error
	r.closeOnce.Do(func() {
		err = unix.Munmap(r.mem)
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
