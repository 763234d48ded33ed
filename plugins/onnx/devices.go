package onnx

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/azaion/edge/sdk/backend"
)

// devices lists the CPU (model name from /proc/cpuinfo, memory from
// /proc/meminfo) and, when the CUDA provider is available, CUDA device 0.
func devices(providers []string) []backend.Device {
	cpu := backend.Device{ID: "cpu", Kind: backend.DeviceCPU, Name: cpuModel()}
	cpu.MemoryTotal, cpu.MemoryFree = memInfo()
	out := []backend.Device{cpu}
	for _, p := range providers {
		if p == ProviderCUDA {
			out = append(out, backend.Device{ID: "cuda:0", Kind: backend.DeviceCUDA, Name: "CUDA device 0"})
		}
	}
	return out
}

// cpuModel returns the CPU model name and logical core count.
func cpuModel() string {
	name := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			k = strings.TrimSpace(k)
			if ok && (k == "model name" || k == "Model" || k == "Hardware") {
				name = strings.TrimSpace(v)
				break
			}
		}
	}
	return name + " (" + strconv.Itoa(runtime.NumCPU()) + " threads)"
}

// memInfo returns MemTotal and MemAvailable in bytes (0 when unknown).
func memInfo() (total, avail uint64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			avail = v * 1024
		}
	}
	return total, avail
}
