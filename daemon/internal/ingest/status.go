package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/amqp"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/stream"
)

// StatusFile is the name of the status file the running ingest keeps under
// the data root (rewritten every second) for `azaion ingest status`.
const StatusFile = "ingest-status.json"

// Status is the ingest's state.
type Status struct {
	// Stream and Consumer identify the subscription.
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	// Connected says whether a consumer is subscribed now.
	Connected bool `json:"connected"`
	// LastOffset is the last offset whose files are durable (-1: none yet).
	LastOffset int64 `json:"last_offset"`
	// TailOffset is the stream's last offset when last queried (-1: unknown or empty).
	TailOffset int64 `json:"tail_offset"`
	// Lag is how many messages are in the stream after LastOffset (-1: unknown).
	Lag int64 `json:"lag"`
	// MessagesPerSecond is the apply rate over the last 10 seconds.
	MessagesPerSecond float64 `json:"messages_per_second"`
	// Applied and Rejected count the messages handled since the start.
	Applied  int64 `json:"applied"`
	Rejected int64 `json:"rejected"`
	// Started is when the ingest started; Updated when this status was taken.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// PID is the process running the ingest.
	PID int `json:"pid"`
}

// Status returns the current state.
func (i *Ingester) Status() Status {
	last, tail := i.lastApplied.Load(), i.tail.Load()
	return Status{
		Stream: i.opts.Stream, Consumer: i.opts.Consumer, Connected: i.connected.Load(),
		LastOffset: last, TailOffset: tail, Lag: lagOf(tail, last),
		MessagesPerSecond: i.rate.perSecond(time.Now()), Applied: i.applied.Load(), Rejected: i.rejected.Load(),
		Started: i.started.UTC(), Updated: time.Now().UTC(), PID: os.Getpid(),
	}
}

func lagOf(tail, last int64) int64 {
	switch {
	case tail < 0 && last < 0:
		return 0
	case tail < 0:
		return -1
	case tail <= last:
		return 0
	}
	return tail - last
}

// ReadStatus reads the status file a running (or stopped) ingest left under root.
func ReadStatus(root string) (Status, error) {
	var s Status
	b, err := os.ReadFile(filepath.Join(root, StatusFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(root, StatusFile), err)
	}
	return s, nil
}

func (i *Ingester) writeStatus() {
	b, _ := json.MarshalIndent(i.Status(), "", "  ")
	p := filepath.Join(i.opts.DataRoot, StatusFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
		_ = os.Rename(tmp, p)
	}
}

func (i *Ingester) statusLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		i.writeStatus()
		select {
		case <-ctx.Done():
			i.connected.Store(false)
			i.writeStatus()
			return
		case <-t.C:
		}
	}
}

// lagLoop queries the stream's tail every LagInterval.
func (i *Ingester) lagLoop(ctx context.Context) {
	t := time.NewTicker(i.opts.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		i.mu.Lock()
		env := i.env
		i.mu.Unlock()
		if env == nil {
			continue
		}
		tail, err := TailOffset(ctx, env, i.opts.Stream, 5*time.Second)
		if err != nil {
			i.log.Debug("ingest: tail query failed", "error", err)
			continue
		}
		i.tail.Store(tail)
		i.metrics.tail.Set(float64(tail))
	}
}

// TailOffset returns the offset of the stream's last message (-1 when the
// stream is empty). RabbitMQ 3.10 has no StreamStats command (the client's
// call hangs until its timeout), so it subscribes a short-lived consumer at
// the last chunk: the first message delivered is the chunk's first, and the
// chunk's entry count gives the last offset.
func TailOffset(ctx context.Context, env *stream.Environment, name string, timeout time.Duration) (int64, error) {
	got := make(chan int64, 1)
	var once sync.Once
	c, err := env.NewConsumer(name, func(cc stream.ConsumerContext, _ *amqp.Message) {
		once.Do(func() { got <- cc.Consumer.GetOffset() + int64(cc.GetEntriesCount()) - 1 })
	}, stream.NewConsumerOptions().SetOffset(stream.OffsetSpecification{}.Last()).
		SetClientProvidedName("azaion-ingest-tail").SetInitialCredits(1).SetCRCCheck(false))
	if err != nil {
		return -1, fmt.Errorf("tail of %s: %w", name, err)
	}
	defer c.Close()
	// An empty stream delivers nothing; a short wait tells it from a slow broker.
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case off := <-got:
		return off, nil
	case <-t.C:
		return -1, nil
	case <-ctx.Done():
		return -1, errors.Join(ctx.Err())
	}
}

// rateMeter is a 10-second sliding window of applied messages.
type rateMeter struct {
	mu    sync.Mutex
	slots [10]struct {
		sec int64
		n   int
	}
}

func (r *rateMeter) add(now time.Time, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := now.Unix()
	slot := &r.slots[s%int64(len(r.slots))]
	if slot.sec != s {
		slot.sec, slot.n = s, 0
	}
	slot.n += n
}

func (r *rateMeter) perSecond(now time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, total := now.Unix(), 0
	for _, slot := range r.slots {
		if s-slot.sec < int64(len(r.slots)) && slot.sec <= s {
			total += slot.n
		}
	}
	return float64(total) / float64(len(r.slots))
}

// metrics are the ingest's Prometheus collectors.
type metrics struct {
	applied      prometheus.Counter
	rejects      *prometheus.CounterVec
	lastOffset   prometheus.Gauge
	tail         prometheus.Gauge
	batchSeconds prometheus.Histogram
	lag          prometheus.GaugeFunc
	connected    prometheus.GaugeFunc
	rate         prometheus.GaugeFunc
}

func newMetrics(i *Ingester) *metrics {
	return &metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "azaion_ingest_messages_applied_total",
			Help: "Annotation messages applied to the data root."}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "azaion_ingest_messages_rejected_total",
			Help: "Annotation messages set aside in rejects/, by reason."}, []string{"reason"}),
		lastOffset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "azaion_ingest_last_offset",
			Help: "The last stream offset whose files are durable."}),
		tail: prometheus.NewGauge(prometheus.GaugeOpts{Name: "azaion_ingest_tail_offset",
			Help: "The stream's last offset when last queried."}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "azaion_ingest_batch_seconds",
			Help: "Time to make one batch durable (write, fsync, rename, offset store).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azaion_ingest_lag_messages",
			Help: "Messages in the stream not yet applied (-1: unknown)."}, func() float64 { return float64(lagOf(i.tail.Load(), i.lastApplied.Load())) }),
		connected: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azaion_ingest_connected",
			Help: "1 while subscribed to the stream."}, func() float64 {
			if i.connected.Load() {
				return 1
			}
			return 0
		}),
		rate: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "azaion_ingest_messages_per_second",
			Help: "Apply rate over the last 10 seconds."}, func() float64 { return i.rate.perSecond(time.Now()) }),
	}
}

// Collectors returns the ingest's Prometheus collectors, for the daemon's registry.
func (i *Ingester) Collectors() []prometheus.Collector {
	m := i.metrics
	return []prometheus.Collector{m.applied, m.rejects, m.lastOffset, m.tail, m.batchSeconds, m.lag, m.connected, m.rate}
}
