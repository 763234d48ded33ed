package daemon

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/sdk/shmem"
)

// newSharedImages creates the memory shared with the detection plugins
// (limits.shared_images; sdk/shmem) and exports its counters. It returns
// nil when it is disabled or cannot be created: images then cross the
// plugin connection as bytes, as they do when the region is full.
func newSharedImages(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) *shmem.Pool {
	size := cfg.Limits.SharedImages
	if size <= 0 {
		return nil
	}
	region, err := shmem.Create(int(size))
	if err != nil {
		log.Warn("no shared image memory; images go to the plugins as bytes", "error", err)
		return nil
	}
	pool := shmem.NewPool(region)
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "azaion_images_shared_total",
			Help: "Images a backend plugin read from the shared image memory (sent by reference, answered)."},
			func() float64 { return float64(pool.Shared.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "azaion_images_copied_total",
			Help: "Images sent to a backend plugin as bytes over its connection (answered)."},
			func() float64 { return float64(pool.Copied.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "azaion_shared_images_full_total",
			Help: "Request bodies that found the shared image memory full and were read to the heap."},
			func() float64 { return float64(pool.Full.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azaion_shared_images_bytes_in_use",
			Help: "Bytes of the shared image memory in use (held slots included)."},
			func() float64 { return float64(pool.InUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azaion_shared_images_bytes",
			Help: "Size of the shared image memory (limits.shared_images)."},
			func() float64 { return float64(region.Size()) }),
	)
	return pool
}
