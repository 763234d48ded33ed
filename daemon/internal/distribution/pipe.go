package distribution

import (
	"io"
	"sync"
)

// pipeWriter hands writes to a goroutine that passes them on to w, so that
// the download (network reads) and the verification (HMAC, store write)
// run side by side. The goroutine is owned by the pipeWriter: Close stops it.
type pipeWriter struct {
	w    io.Writer
	ch   chan *[]byte
	done chan struct{}
	pool sync.Pool

	mu  sync.Mutex
	err error
}

func newPipeWriter(w io.Writer) *pipeWriter {
	p := &pipeWriter{w: w, ch: make(chan *[]byte, 64), done: make(chan struct{})}
	p.pool.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	go p.run()
	return p
}

func (p *pipeWriter) run() {
	defer close(p.done)
	for bp := range p.ch {
		if p.error() == nil {
			if _, err := p.w.Write(*bp); err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
		}
		*bp = (*bp)[:0]
		p.pool.Put(bp)
	}
}

func (p *pipeWriter) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Write queues a copy of b; it returns the first error of the downstream
// writer (possibly from an earlier write).
func (p *pipeWriter) Write(b []byte) (int, error) {
	if err := p.error(); err != nil {
		return 0, err
	}
	bp := p.pool.Get().(*[]byte)
	*bp = append(*bp, b...)
	p.ch <- bp
	return len(b), nil
}

// Close waits until every queued write is done and returns the first error.
func (p *pipeWriter) Close() error {
	close(p.ch)
	<-p.done
	return p.error()
}
