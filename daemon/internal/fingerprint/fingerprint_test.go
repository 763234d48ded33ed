package fingerprint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStable(t *testing.T) {
	a, b := Collect(Options{}), Collect(Options{})
	if a.Hash != b.Hash || a.Canonical != b.Canonical {
		t.Fatalf("two runs differ:\n%s\n%s", a.Canonical, b.Canonical)
	}
	if len(a.Hash) != 64 || !strings.HasPrefix(a.Canonical, Header+"\n") {
		t.Fatalf("bad fingerprint %q %q", a.Hash, a.Canonical)
	}
	t.Logf("this machine:\n%s%s", a.Canonical, a.Hash)
}

// fakeTree writes files (path -> content) under a temporary root.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func line(f *Fingerprint, name string) string {
	for _, l := range strings.Split(f.Canonical, "\n") {
		if strings.HasPrefix(l, name+"=") {
			return strings.TrimPrefix(l, name+"=")
		}
	}
	return "<missing>"
}

func TestFakeSysfs(t *testing.T) {
	machine := map[string]string{
		"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU 9000\nphysical id\t: 0\ncore id\t: 0\n\n" +
			"processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU 9000\nphysical id\t: 0\ncore id\t: 1\n\n",
		"sys/devices/system/cpu/cpu0/topology/physical_package_id": "0\n",
		"sys/devices/system/cpu/cpu0/topology/core_id":             "0\n",
		"sys/devices/system/cpu/cpu1/topology/physical_package_id": "0\n",
		"sys/devices/system/cpu/cpu1/topology/core_id":             "1\n",
		"proc/meminfo": "MemTotal:       16303412 kB\nMemFree:        1000 kB\n",
		// serial only under device/ (SCSI)
		"sys/block/sda/removable": "0\n", "sys/block/sda/size": "1000\n", "sys/block/sda/device/serial": " SDA-SERIAL \n",
		// serial in the block folder (virtio/NVMe)
		"sys/block/nvme0n1/removable": "0\n", "sys/block/nvme0n1/size": "2000\n", "sys/block/nvme0n1/serial": "NVME-SERIAL\n",
		// no serial anywhere
		"sys/block/vdb/removable": "0\n", "sys/block/vdb/size": "3000\n",
		// removable and virtual disks are not counted
		"sys/block/sdb/removable": "1\n", "sys/block/sdb/size": "100\n", "sys/block/sdb/serial": "USB-STICK\n",
		"sys/block/loop0/removable": "0\n", "sys/block/loop0/size": "100\n",
		"sys/block/zram0/removable": "0\n", "sys/block/zram0/size": "100\n",
		// a GPU and a bridge
		"sys/bus/pci/devices/0000:01:00.0/class": "0x030000\n", "sys/bus/pci/devices/0000:01:00.0/vendor": "0x10DE\n",
		"sys/bus/pci/devices/0000:01:00.0/device": "0x2684\n",
		"sys/bus/pci/devices/0000:02:00.0/class":  "0x030200\n", "sys/bus/pci/devices/0000:02:00.0/vendor": "0x10de\n",
		"sys/bus/pci/devices/0000:02:00.0/device": "0x20b0\n",
		"sys/bus/pci/devices/0000:00:1f.0/class":  "0x060100\n", "sys/bus/pci/devices/0000:00:1f.0/vendor": "0x8086\n",
		"sys/bus/pci/devices/0000:00:1f.0/device": "0x1234\n",
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		uuids []string
		want  map[string]string
	}{
		{"full machine", machine, []string{"GPU-B", "GPU-A"}, map[string]string{
			"cpu.model":   "Fake CPU 9000",
			"cpu.logical": "2",
			"ram.gib":     "16",
			"gpu.pci":     "10de:20b0,10de:2684",
			"gpu.uuid":    "gpu-a,gpu-b",
			"disk.serial": "!unreadable,NVME-SERIAL,SDA-SERIAL",
		}},
		{"empty tree", map[string]string{"README": "nothing here"}, nil, map[string]string{
			"cpu.model":   Unreadable,
			"cpu.logical": Unreadable,
			"ram.gib":     Unreadable,
			"gpu.pci":     "",
			"disk.serial": Unreadable,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files)
			f := Collect(Options{Root: root, GPUUUIDs: tc.uuids})
			for k, v := range tc.want {
				if got := line(f, k); got != v {
					t.Errorf("%s = %q, want %q\n%s", k, got, v, f.Canonical)
				}
			}
			if g := Collect(Options{Root: root, GPUUUIDs: tc.uuids}); g.Hash != f.Hash {
				t.Errorf("two runs on the same tree differ")
			}
		})
	}
}
