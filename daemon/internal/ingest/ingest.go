// Package ingest is the daemon's annotation queue consumer: it reads the
// RabbitMQ stream of annotation events (sdk/annotation) and applies them to
// the data root (data-seed/, data/, data_deleted/, each with images/ and
// labels/), setting bad messages aside in rejects/.
//
// Delivery is at-least-once with idempotent writes: messages are applied in
// batches whose files are fsynced before the batch's last offset is stored,
// first in the data root's offset.yaml and then on the broker under the
// consumer's name. A restart resumes after the stored offset; a replayed
// message leaves the same files. It is imported only by the daemon and its CLI.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/amqp"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/ha"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/logs"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/stream"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/sdk/annotation"
)

// Options configure an Ingester.
type Options struct {
	// Broker is the stream URI (with credentials); never logged.
	Broker config.Secret
	// Stream is the stream name.
	Stream string
	// Consumer is the consumer name the broker stores the offset under.
	Consumer string
	// DataRoot is the data root.
	DataRoot string
	// Decode bounds the messages accepted.
	Decode annotation.DecodeOptions
	// BatchMessages is the most messages made durable together.
	BatchMessages int
	// BatchWait is the longest a message waits for its batch to fill.
	BatchWait time.Duration
	// LagInterval is how often the stream's tail is queried.
	LagInterval time.Duration
	// Sync is the durability strategy: SyncFS (default on Linux) or SyncFiles.
	Sync string
	// Log receives the consumer's events.
	Log *slog.Logger
}

// OptionsFrom returns the options the daemon's configuration describes.
func OptionsFrom(cfg *config.Config, log *slog.Logger) Options {
	c := cfg.Ingest
	return Options{
		Broker: c.Broker, Stream: c.Stream, Consumer: c.Consumer, DataRoot: cfg.Data.Root,
		Decode:        annotation.DecodeOptions{MaxImageBytes: c.MaxImageBytes, MaxPixels: c.MaxPixels},
		BatchMessages: c.BatchMessages, BatchWait: c.BatchWait, LagInterval: c.LagInterval, Sync: c.Sync, Log: log,
	}
}

// Ingester consumes the stream into the data root. Create it with New and
// run it with Run; Status and the Prometheus collectors report its state.
type Ingester struct {
	opts    Options
	store   *Store
	log     *slog.Logger
	metrics *metrics

	// in carries delivered messages from the client's handler to the writer.
	in chan Message

	mu  sync.Mutex
	env *stream.Environment
	// deliverMu serialises hand-offs from the client's dispatchers.
	deliverMu sync.Mutex
	// toStore carries the latest durable offset to offsetStorer.
	toStore chan int64

	// lastApplied is the last offset whose files are durable (-1: none).
	lastApplied atomic.Int64
	// lastQueued is the last offset handed to the writer (-1: none).
	lastQueued atomic.Int64
	tail       atomic.Int64
	applied    atomic.Int64
	rejected   atomic.Int64
	connected  atomic.Bool
	rate       rateMeter
	started    time.Time
}

// New checks opts, locks the data root (ErrDataRootBusy when another
// ingest holds it) and prepares it.
func New(opts Options) (*Ingester, error) {
	if opts.Broker == "" {
		return nil, errors.New("ingest: no broker URI: set AZAION_STREAM_URI, ingest.uri_file or ingest.uri")
	}
	if err := config.CheckStreamURI(opts.Broker.Reveal()); err != nil {
		return nil, fmt.Errorf("ingest: broker URI: %w", err)
	}
	if opts.Stream == "" || opts.Consumer == "" || opts.DataRoot == "" {
		return nil, errors.New("ingest: stream, consumer and data root are required")
	}
	if opts.BatchMessages <= 0 {
		opts.BatchMessages = 256
	}
	if opts.LagInterval <= 0 {
		opts.LagInterval = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	routeClientLogs(opts.Log, opts.Broker)
	st, err := NewStore(opts.DataRoot, opts.Decode, opts.Sync)
	if err != nil {
		return nil, err
	}
	i := &Ingester{opts: opts, store: st, log: opts.Log, in: make(chan Message, 2*opts.BatchMessages),
		toStore: make(chan int64, 1), started: time.Now()}
	i.lastApplied.Store(-1)
	i.lastQueued.Store(-1)
	i.tail.Store(-1)
	i.metrics = newMetrics(i)
	return i, nil
}

// The stream client logs through a process-wide logger that it reads
// without synchronisation, so it is set once, at package init, to an adapter
// whose target (the first Ingester's logger) is swapped atomically.
// Before an Ingester exists, the client's lines are discarded: short-lived
// tools return their errors anyway.
var clientLog atomic.Pointer[clientTarget]

type clientTarget struct {
	log    *slog.Logger
	broker config.Secret
}

func init() { logs.SetLogger(clientLogger{}) }

// routeClientLogs points the client's log lines at log (the first call wins).
func routeClientLogs(log *slog.Logger, broker config.Secret) {
	clientLog.CompareAndSwap(nil, &clientTarget{log: log.With("component", "stream-client"), broker: broker})
}

// DiscardClientLogs keeps the stream client's log lines quiet (the
// default until an Ingester routes them); it exists for tools to say so.
func DiscardClientLogs() {}

// clientLogger adapts slog to the stream client's logger, masking the
// broker's password should a line ever contain it.
type clientLogger struct{}

func (clientLogger) emit(level slog.Level, m string, v []any) {
	t := clientLog.Load()
	if t == nil {
		return
	}
	s := fmt.Sprintf(m, v...)
	if u, err := url.Parse(t.broker.Reveal()); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "***")
		}
	}
	t.log.Log(context.Background(), level, s)
}

func (l clientLogger) Info(m string, v ...any)  { l.emit(slog.LevelInfo, m, v) }
func (l clientLogger) Error(m string, v ...any) { l.emit(slog.LevelError, m, v) }
func (l clientLogger) Debug(m string, v ...any) { l.emit(slog.LevelDebug, m, v) }
func (l clientLogger) Warn(m string, v ...any)  { l.emit(slog.LevelWarn, m, v) }

// body returns a message's payload: its data section, or an AMQP value
// holding bytes (some producers send that).
func body(m *amqp.Message) []byte {
	if d := m.GetData(); d != nil {
		return d
	}
	if b, ok := m.Value.([]byte); ok {
		return b
	}
	return nil
}

// brokerHost names the broker for logs without its credentials.
func brokerHost(s config.Secret) string {
	u, err := url.Parse(s.Reveal())
	if err != nil {
		return "?"
	}
	return u.Host
}

// NewEnvironment connects to the broker with the settings the ingest needs
// (read buffer 0: the client's default buffer stalls consumers at ~900 msg/s).
func NewEnvironment(broker config.Secret) (*stream.Environment, error) {
	env, err := stream.NewEnvironment(stream.NewEnvironmentOptions().
		SetUri(broker.Reveal()).
		SetReadBuffer(0).
		SetRPCTimeout(10 * time.Second).
		SetMaxConsumersPerClient(4))
	if err != nil {
		return nil, redact(err, broker)
	}
	return env, nil
}

// redact removes the URI from an error's text, in case the client quoted it.
func redact(err error, broker config.Secret) error {
	s := err.Error()
	if b := broker.Reveal(); b != "" && containsStr(s, b) {
		return errors.New("connect to the broker failed (details withheld: they contain the URI)")
	}
	if u, e := url.Parse(broker.Reveal()); e == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" && containsStr(s, pw) {
			return errors.New("connect to the broker failed (details withheld: they contain the password)")
		}
	}
	return err
}

func containsStr(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

// DeclareStream creates the stream if it does not exist.
func DeclareStream(env *stream.Environment, name string) error {
	err := env.DeclareStream(name, stream.NewStreamOptions())
	if err != nil && !errors.Is(err, stream.StreamAlreadyExists) {
		return fmt.Errorf("declare stream %s: %w", name, err)
	}
	return nil
}

// Close releases the data root (its lock, taken by New) without running;
// Run does it when it returns.
func (i *Ingester) Close() { i.store.Close() }

// Run consumes until ctx ends. It reconnects while the broker is away; it
// returns an error only when the data root cannot be written. It runs once:
// when it returns, the data root's lock is released.
func (i *Ingester) Run(ctx context.Context) error {
	defer i.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start, err := i.startOffset()
	if err != nil {
		return err
	}
	resume := "the broker's stored offset, else the first message"
	if start >= 0 {
		resume = fmt.Sprintf("offset %d (offset.yaml)", start)
	}
	i.log.Info("ingest starting", "broker", brokerHost(i.opts.Broker), "stream", i.opts.Stream,
		"consumer", i.opts.Consumer, "data", i.opts.DataRoot, "resume_after", resume)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	writerErr := make(chan error, 1)
	wg.Go(func() { writerErr <- i.writer(ctx) })
	wg.Go(func() { i.statusLoop(ctx) })

	// The broker-facing goroutines may sit in the client's own reconnect
	// loops while the broker is away; Run waits for them a bounded time.
	var bwg sync.WaitGroup
	defer func() {
		cancel()
		done := make(chan struct{})
		go func() { bwg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			i.log.Warn("ingest: the broker client is still reconnecting; leaving it behind")
		}
	}()
	bwg.Go(func() { i.lagLoop(ctx) })
	bwg.Go(func() { i.offsetStorer(ctx) })
	bwg.Go(func() { _ = i.connectLoop(ctx, start) })
	select {
	case err := <-writerErr:
		return err
	case <-ctx.Done():
		return <-writerErr
	}
}

// startOffset returns the last durable offset: offset.yaml when present
// (it describes this data root), else the broker's stored offset for the
// consumer name, else -1 (start from the first message). The broker is
// asked later, in connectLoop, when offset.yaml is missing.
func (i *Ingester) startOffset() (int64, error) {
	o, ok, err := ReadOffset(i.opts.DataRoot)
	if err != nil {
		return 0, err
	}
	if ok && o.Stream == i.opts.Stream {
		i.lastApplied.Store(o.Offset)
		i.lastQueued.Store(o.Offset)
		i.metrics.lastOffset.Set(float64(o.Offset))
		return o.Offset, nil
	}
	if ok {
		i.log.Warn("offset.yaml is for another stream: ignoring it", "file_stream", o.Stream, "stream", i.opts.Stream)
	}
	return -2, nil // unknown: ask the broker
}

// connectLoop keeps one reliable consumer open, recreating the connection
// when the client gives up, until ctx ends.
func (i *Ingester) connectLoop(ctx context.Context, start int64) error {
	backoff := time.Second
	for ctx.Err() == nil {
		err := i.consumeOnce(ctx, &start)
		i.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		i.log.Warn("ingest: no broker connection, retrying", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		if err == nil {
			backoff = time.Second
		}
	}
	return nil
}

// consumeOnce connects, subscribes after the last queued offset and blocks
// until ctx ends or the consumer closes for good.
func (i *Ingester) consumeOnce(ctx context.Context, start *int64) error {
	env, err := NewEnvironment(i.opts.Broker)
	if err != nil {
		return err
	}
	defer env.Close()
	if err := DeclareStream(env, i.opts.Stream); err != nil {
		return err
	}
	if *start == -2 {
		off, err := env.QueryOffset(i.opts.Consumer, i.opts.Stream)
		switch {
		case err == nil:
			*start = off
			i.lastApplied.Store(off)
			i.lastQueued.Store(off)
			i.log.Info("ingest: resuming after the broker's stored offset", "offset", off)
		case errors.Is(err, stream.OffsetNotFoundError):
			*start = -1
		default:
			return fmt.Errorf("query offset: %w", err)
		}
	}
	after := max(*start, i.lastQueued.Load())
	spec := stream.OffsetSpecification{}.First()
	if after >= 0 {
		spec = stream.OffsetSpecification{}.Offset(after + 1)
	}
	i.mu.Lock()
	i.env = env
	i.mu.Unlock()
	defer func() {
		i.mu.Lock()
		i.env = nil
		i.mu.Unlock()
	}()
	opts := stream.NewConsumerOptions().SetConsumerName(i.opts.Consumer).SetManualCommit().
		SetOffset(spec).SetClientProvidedName("azaion-ingest").SetCRCCheck(false)
	c, err := ha.NewReliableConsumer(env, i.opts.Stream, opts, func(cc stream.ConsumerContext, m *amqp.Message) {
		i.deliver(ctx, cc.Consumer.GetOffset(), body(m))
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", i.opts.Stream, err)
	}
	defer c.Close()
	i.connected.Store(true)
	i.log.Info("ingest: subscribed", "stream", i.opts.Stream, "after", after)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			switch c.GetStatus() {
			case ha.StatusClosed, ha.StatusStreamDoesNotExist:
				return fmt.Errorf("consumer closed (%s)", c.GetStatusAsString())
			case ha.StatusReconnecting:
				i.connected.Store(false)
			default:
				i.connected.Store(true)
			}
		}
	}
}

// deliver hands one message to the writer. After a reconnect the client's
// old dispatcher may still be inside deliver (blocked on a full queue) while
// the new consumer, started after the last offset handed to deliver, begins
// delivering: the lock, held across the hand-off, serialises them, and
// lastQueued only grows, so a message is queued once and in order.
func (i *Ingester) deliver(ctx context.Context, off int64, body []byte) {
	i.deliverMu.Lock()
	defer i.deliverMu.Unlock()
	if off <= i.lastQueued.Load() {
		return // a redelivery after a reconnect
	}
	select {
	case i.in <- Message{Offset: off, Body: body}:
		i.lastQueued.Store(off)
	case <-ctx.Done():
	}
}

// writer applies messages in batches and stores the offsets. It is a
// two-stage pipeline: while one batch is being made durable and applied
// (commit), the next one's files are already being written (prepare).
func (i *Ingester) writer(ctx context.Context) error {
	type prepared struct {
		msgs []Message
		p    *Prepared
		err  error
	}
	commits := make(chan prepared, 1)
	stop := make(chan struct{})
	commitErr := make(chan error, 1)
	go func() { // the commit stage; owned by writer, ends when commits closes
		var err error
		for c := range commits {
			if err != nil {
				if c.p != nil {
					c.p.Close()
				}
				continue
			}
			if err = i.commitBatch(c.msgs, c.p, c.err); err != nil {
				close(stop)
			}
		}
		commitErr <- err
	}()
	finish := func(err error) error {
		close(commits)
		if cerr := <-commitErr; cerr != nil {
			return cerr
		}
		return err
	}

	batch := make([]Message, 0, i.opts.BatchMessages)
	lastSeen := i.lastApplied.Load()
	var timer <-chan time.Time
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		p, err := i.store.Prepare(batch)
		c := prepared{msgs: batch, p: p, err: err}
		batch = make([]Message, 0, i.opts.BatchMessages)
		timer = nil
		select {
		case commits <- c:
			return nil
		case <-stop:
			if p != nil {
				p.Close()
			}
			return errors.New("commit failed")
		}
	}
	for {
		select {
		case <-ctx.Done():
			// Apply what has arrived (it is cheap and saves a replay).
			for {
				select {
				case m := <-i.in:
					if m.Offset <= lastSeen {
						continue
					}
					lastSeen = m.Offset
					batch = append(batch, m)
					if len(batch) >= i.opts.BatchMessages {
						if err := flush(); err != nil {
							return finish(err)
						}
					}
				default:
					return finish(flush())
				}
			}
		case m := <-i.in:
			if m.Offset <= lastSeen {
				continue // never apply an offset twice in a row or out of order
			}
			lastSeen = m.Offset
			batch = append(batch, m)
			if len(batch) == 1 && i.opts.BatchWait > 0 {
				timer = time.After(i.opts.BatchWait)
			}
			if len(batch) >= i.opts.BatchMessages || i.opts.BatchWait <= 0 && len(i.in) == 0 {
				if err := flush(); err != nil {
					return finish(err)
				}
			}
		case <-timer:
			if err := flush(); err != nil {
				return finish(err)
			}
		case <-stop:
			return finish(nil)
		}
	}
}

// commitBatch makes one prepared batch durable and applied, then stores its
// last offset locally and on the broker. A failure is retried a few times
// from scratch (the batch is idempotent) before the ingest gives up.
func (i *Ingester) commitBatch(batch []Message, p *Prepared, err error) error {
	t0 := time.Now()
	var res BatchResult
	if err == nil {
		res, err = i.store.Commit(p)
	}
	for attempt := 0; err != nil && attempt < 3; attempt++ {
		i.log.Error("ingest: applying a batch failed, retrying", "error", err, "first_offset", batch[0].Offset)
		time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
		res, err = i.store.ApplyBatch(batch)
	}
	if err != nil {
		return fmt.Errorf("ingest: data root %s: %w", i.opts.DataRoot, err)
	}
	last := batch[len(batch)-1].Offset
	if err := WriteOffset(i.opts.DataRoot, Offset{Stream: i.opts.Stream, Consumer: i.opts.Consumer, Offset: last, Updated: time.Now().UTC()}); err != nil {
		return fmt.Errorf("ingest: write offset: %w", err)
	}
	for _, r := range res.Rejected {
		i.log.Warn("ingest: message rejected", "offset", r.Offset, "reason", r.Reason, "detail", r.Msg)
		i.metrics.rejects.WithLabelValues(r.Reason).Inc()
	}
	// The counters first: whoever sees the new last offset (Status) sees
	// the batch counted.
	i.applied.Add(int64(res.Applied))
	i.rejected.Add(int64(len(res.Rejected)))
	i.lastApplied.Store(last)
	i.storeServerOffset(last)
	i.rate.add(time.Now(), len(batch))
	i.metrics.applied.Add(float64(res.Applied))
	i.metrics.batchSeconds.Observe(time.Since(t0).Seconds())
	i.metrics.lastOffset.Set(float64(last))
	if testBatchHook != nil {
		testBatchHook()
	}
	return nil
}

// testBatchHook, when set by a test, runs after every durable batch (to slow
// the consumer down so that it can be killed mid-stream).
var testBatchHook func()

// storeServerOffset hands the offset to offsetStorer, replacing an older
// one not yet stored: the writer never waits for the broker.
func (i *Ingester) storeServerOffset(off int64) {
	for {
		select {
		case i.toStore <- off:
			return
		default:
		}
		select {
		case <-i.toStore:
		default:
		}
	}
}

// offsetStorer stores the latest durable offset under the consumer name on
// the broker. A failure (broker away) is retried with the next offset or
// after a second; offset.yaml already holds it.
func (i *Ingester) offsetStorer(ctx context.Context) {
	pending := int64(-1)
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case pending = <-i.toStore:
		case <-retry.C:
			if pending < 0 {
				continue
			}
		}
		i.mu.Lock()
		env := i.env
		i.mu.Unlock()
		if env == nil {
			continue
		}
		if err := env.StoreOffset(i.opts.Consumer, i.opts.Stream, pending); err != nil {
			i.log.Debug("ingest: storing the offset on the broker failed", "error", err)
			continue
		}
		pending = -1
	}
}
