// Package fingerprint computes the hardware fingerprint of the machine the
// daemon runs on and its SHA-256, the hardware hash that binds resources
// served by the Azaion REST API to this machine. It is imported only by the
// daemon (and its CLI).
//
// # Canonical string (version 1)
//
// One line per field, "name=value\n", in this order:
//
//	azaion-fingerprint/v1
//	cpu.model=<model name of the first processor>
//	cpu.logical=<number of logical CPUs (hardware threads)>
//	gpu.pci=<vendor:device of each display controller, 4 lower-case hex digits each; sorted; comma-separated>
//	gpu.uuid=<GPU UUIDs reported by backend plugins; sorted; comma-separated>
//	ram.gib=<total physical memory in GiB, rounded to the nearest GiB>
//	disk.serial=<serials of the fixed disks; sorted; comma-separated>
//
// The hardware hash is the lower-case hex SHA-256 of that string. A field that
// cannot be read has the value "!unreadable" (a disk without a readable
// serial contributes "!unreadable" to the list); reading never fails. Values
// have surrounding spaces trimmed, and '\n', '=' and ',' replaced by '_'.
//
// Fixed disks are the block devices that are not removable, not virtual
// (loop, ram, zram, dm, md, nbd), not optical or floppy drives, and not empty.
// A disk's serial comes from udev (through ghw), else from
// /sys/block/<dev>/serial, else from /sys/block/<dev>/device/serial.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/block"
)

// Unreadable is the value of a field that could not be read.
const Unreadable = "!unreadable"

// Header is the first line of the canonical string.
const Header = "azaion-fingerprint/v1"

// Options tune Collect. The zero value reads this machine.
type Options struct {
	// Root is the filesystem root holding /proc and /sys (default "/"); tests
	// point it at a fake tree.
	Root string
	// GPUUUIDs are GPU UUIDs reported by backend plugins, if any.
	GPUUUIDs []string
}

// Field is one named value of the fingerprint.
type Field struct {
	// Name is the field name, e.g. "cpu.model".
	Name string `json:"name"`
	// Value is the canonical value ("!unreadable" when it could not be read).
	Value string `json:"value"`
	// Note says why a value could not be read, or where it came from.
	Note string `json:"note,omitempty"`
}

// Fingerprint is the collected fingerprint.
type Fingerprint struct {
	// Fields in canonical order.
	Fields []Field `json:"fields"`
	// Canonical is the canonical string that is hashed.
	Canonical string `json:"canonical"`
	// Hash is the hardware hash: hex SHA-256 of Canonical.
	Hash string `json:"hash"`
}

// Collect reads the machine's fingerprint. It never fails: what cannot be
// read is recorded as Unreadable.
func Collect(opt Options) *Fingerprint {
	root := opt.Root
	if root == "" {
		root = "/"
	}
	ctx := []any{ghw.WithDisableWarnings(), ghw.WithDisableTools()}
	if root != "/" {
		ctx = append(ctx, ghw.WithChroot(root))
	}
	var fields []Field
	add := func(name, value, note string) {
		fields = append(fields, Field{Name: name, Value: value, Note: note})
	}

	model, logical, note := Unreadable, Unreadable, ""
	if c, err := ghw.CPU(ctx...); err != nil {
		note = err.Error()
	} else {
		if len(c.Processors) > 0 && strings.TrimSpace(c.Processors[0].Model) != "" {
			model = clean(c.Processors[0].Model)
		}
		if c.TotalHardwareThreads > 0 {
			logical = strconv.Itoa(int(c.TotalHardwareThreads))
		}
	}
	add("cpu.model", model, note)
	add("cpu.logical", logical, note)

	gpus, note := gpuPCI(root, ctx)
	add("gpu.pci", gpus, note)
	uuids := make([]string, 0, len(opt.GPUUUIDs))
	for _, u := range opt.GPUUUIDs {
		uuids = append(uuids, clean(strings.ToLower(u)))
	}
	add("gpu.uuid", joinSorted(uuids), "")

	ram, note := Unreadable, ""
	if m, err := ghw.Memory(ctx...); err != nil {
		note = err.Error()
	} else {
		b := m.TotalPhysicalBytes
		if b <= 0 {
			b, note = m.TotalUsableBytes, "usable memory (physical unknown)"
		}
		if b > 0 {
			ram = strconv.FormatInt((b+(1<<29))>>30, 10)
		}
	}
	add("ram.gib", ram, note)

	disks, note := diskSerials(root, ctx)
	add("disk.serial", disks, note)

	var sb strings.Builder
	sb.WriteString(Header + "\n")
	for _, f := range fields {
		sb.WriteString(f.Name + "=" + f.Value + "\n")
	}
	sum := sha256.Sum256([]byte(sb.String()))
	return &Fingerprint{Fields: fields, Canonical: sb.String(), Hash: hex.EncodeToString(sum[:])}
}

func clean(s string) string {
	s = strings.TrimSpace(s)
	return strings.NewReplacer("\n", "_", "=", "_", ",", "_", "\r", "_").Replace(s)
}

func joinSorted(v []string) string {
	sort.Strings(v)
	return strings.Join(v, ",")
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// gpuPCI lists display controllers by PCI address: those ghw reports plus
// those found directly under /sys/bus/pci/devices (class 0x03xxxx), so a
// GPU without a DRM driver still counts.
func gpuPCI(root string, ctx []any) (string, string) {
	ids := map[string]string{} // PCI address -> vendor:device
	var notes []string
	if _, err := os.Stat(filepath.Join(root, "sys", "class", "drm")); err != nil {
		// no DRM devices: ghw would only warn on stderr
	} else if g, err := ghw.GPU(ctx...); err != nil {
		notes = append(notes, "ghw: "+err.Error())
	} else {
		for _, c := range g.GraphicsCards {
			if c.DeviceInfo != nil && c.DeviceInfo.Vendor != nil && c.DeviceInfo.Product != nil {
				ids[c.Address] = strings.ToLower(c.DeviceInfo.Vendor.ID + ":" + c.DeviceInfo.Product.ID)
			}
		}
	}
	dir := filepath.Join(root, "sys", "bus", "pci", "devices")
	ents, err := os.ReadDir(dir)
	if err != nil && len(ids) == 0 {
		if errors.Is(err, os.ErrNotExist) {
			return "", "no PCI bus"
		}
		return Unreadable, err.Error()
	}
	for _, e := range ents {
		d := filepath.Join(dir, e.Name())
		class, err := readTrim(filepath.Join(d, "class"))
		if err != nil || !strings.HasPrefix(strings.ToLower(class), "0x03") {
			continue
		}
		v, err1 := readTrim(filepath.Join(d, "vendor"))
		p, err2 := readTrim(filepath.Join(d, "device"))
		if err1 != nil || err2 != nil {
			ids[e.Name()] = Unreadable
			continue
		}
		ids[e.Name()] = strings.ToLower(strings.TrimPrefix(v, "0x") + ":" + strings.TrimPrefix(p, "0x"))
	}
	v := make([]string, 0, len(ids))
	for _, id := range ids {
		v = append(v, clean(id))
	}
	return joinSorted(v), strings.Join(notes, "; ")
}

var virtualPrefixes = []string{"loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd"}

func isVirtual(name string) bool {
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// diskSerials lists the serials of fixed disks.
func diskSerials(root string, ctx []any) (string, string) {
	type disk struct{ name, serial string }
	var disks []disk
	var note string
	if _, err := os.Stat(filepath.Join(root, "sys", "block")); err != nil {
		return Unreadable, err.Error()
	}
	if bi, err := ghw.Block(ctx...); err == nil {
		for _, d := range bi.Disks {
			if d.IsRemovable || d.DriveType == block.DriveTypeVirtual || d.DriveType == block.DriveTypeODD ||
				d.DriveType == block.DriveTypeFDD || d.SizeBytes == 0 || isVirtual(d.Name) {
				continue
			}
			disks = append(disks, disk{d.Name, d.SerialNumber})
		}
	} else {
		// ghw failed: list /sys/block ourselves.
		note = "ghw: " + err.Error()
		ents, err := os.ReadDir(filepath.Join(root, "sys", "block"))
		if err != nil {
			return Unreadable, err.Error()
		}
		for _, e := range ents {
			dir := filepath.Join(root, "sys", "block", e.Name())
			if isVirtual(e.Name()) {
				continue
			}
			if r, _ := readTrim(filepath.Join(dir, "removable")); r == "1" {
				continue
			}
			if s, _ := readTrim(filepath.Join(dir, "size")); s == "0" {
				continue
			}
			disks = append(disks, disk{name: e.Name()})
		}
	}
	serials := make([]string, 0, len(disks))
	for _, d := range disks {
		s := d.serial
		if s == "" || s == "unknown" {
			s = ""
			for _, p := range []string{"serial", filepath.Join("device", "serial")} {
				if v, err := readTrim(filepath.Join(root, "sys", "block", d.name, p)); err == nil && v != "" {
					s = v
					break
				}
			}
		}
		if s == "" {
			s = Unreadable
		}
		serials = append(serials, clean(s))
	}
	return joinSorted(serials), note
}
