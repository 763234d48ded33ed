package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/amqp"
	"github.com/rabbitmq/rabbitmq-stream-go-client/pkg/stream"

	"github.com/azaion/edge/sdk/annotation"
	"github.com/azaion/edge/sdk/yololabel"
)

// Publisher sends messages to a stream and waits for the broker's confirms.
type Publisher struct {
	p         *stream.Producer
	sent      atomic.Int64
	confirmed atomic.Int64
	failed    atomic.Int64
	done      chan struct{}
}

// NewPublisher opens a producer on the stream (declaring the stream if needed).
func NewPublisher(env *stream.Environment, name string) (*Publisher, error) {
	if err := DeclareStream(env, name); err != nil {
		return nil, err
	}
	p, err := env.NewProducer(name, stream.NewProducerOptions().SetClientProvidedName("azaion-publish"))
	if err != nil {
		return nil, fmt.Errorf("producer on %s: %w", name, err)
	}
	pub := &Publisher{p: p, done: make(chan struct{})}
	ch := p.NotifyPublishConfirmation()
	go func() { // owned by the Publisher: ends when the producer closes ch
		defer close(pub.done)
		for batch := range ch {
			for _, c := range batch {
				if c.IsConfirmed() {
					pub.confirmed.Add(1)
				} else {
					pub.failed.Add(1)
				}
			}
		}
	}()
	return pub, nil
}

// Send queues one message.
func (p *Publisher) Send(body []byte) error {
	if err := p.p.Send(amqp.NewMessage(body)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	p.sent.Add(1)
	return nil
}

// Wait waits until every sent message is confirmed or failed, or ctx ends.
func (p *Publisher) Wait(ctx context.Context) error {
	for {
		c, f := p.confirmed.Load(), p.failed.Load()
		if c+f >= p.sent.Load() {
			if f > 0 {
				return fmt.Errorf("%d of %d messages were not confirmed by the broker", f, p.sent.Load())
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for confirms (%d of %d): %w", c, p.sent.Load(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close closes the producer.
func (p *Publisher) Close() error {
	err := p.p.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	return err
}

// PublishOptions say how DIR is turned into messages.
type PublishOptions struct {
	// Op is the operation of every message.
	Op annotation.Operation
	// Author goes into every message.
	Author string
	// Decode is the limits the messages are checked against before sending.
	Decode annotation.DecodeOptions
}

// DirAnnotations reads a folder of images and YOLO labels — DIR/images/ and
// DIR/labels/, or both in DIR itself — and calls fn for each annotation in
// name order. Every annotation is validated as the ingest would; the first
// bad file stops it with an error naming the file. An image without a label
// file has no boxes.
func DirAnnotations(dir string, o PublishOptions, fn func(*annotation.Annotation) error) error {
	imgDir, lblDir := filepath.Join(dir, "images"), filepath.Join(dir, "labels")
	if st, err := os.Stat(imgDir); err != nil || !st.IsDir() {
		imgDir, lblDir = dir, dir
	}
	ents, err := os.ReadDir(imgDir)
	if err != nil {
		return err
	}
	names := map[string]string{} // stem -> image file
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		ext := strings.ToLower(filepath.Ext(e.Name()))
		switch ext {
		case ".jpg", ".jpeg", ".png":
		default:
			continue
		}
		stem := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		if prev, dup := names[stem]; dup {
			return fmt.Errorf("%s and %s have the same name", filepath.Join(imgDir, prev), filepath.Join(imgDir, e.Name()))
		}
		names[stem] = e.Name()
	}
	if o.Op == annotation.Edited || o.Op == annotation.Deleted {
		// Labels alone name the annotations too.
		if lents, err := os.ReadDir(lblDir); err == nil {
			for _, e := range lents {
				if stem, ok := strings.CutSuffix(e.Name(), ".txt"); ok && !e.IsDir() {
					if _, seen := names[stem]; !seen {
						names[stem] = ""
					}
				}
			}
		}
	}
	stems := make([]string, 0, len(names))
	for s := range names {
		stems = append(stems, s)
	}
	sort.Strings(stems)
	for _, stem := range stems {
		a := &annotation.Annotation{Name: stem, Op: o.Op, Created: time.Now().UTC(), Author: o.Author}
		if f := names[stem]; f != "" && (o.Op == annotation.Created || o.Op == annotation.Validated) {
			b, err := os.ReadFile(filepath.Join(imgDir, f))
			if err != nil {
				return err
			}
			a.Image = b
			a.ImageFormat = "jpg"
			if strings.EqualFold(filepath.Ext(f), ".png") {
				a.ImageFormat = "png"
			}
		}
		if o.Op != annotation.Deleted {
			boxes, err := yololabel.ReadFile(filepath.Join(lblDir, stem+".txt"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			for _, b := range boxes {
				a.Labels = append(a.Labels, annotation.Box{Class: b.Class, CX: b.CX, CY: b.CY, W: b.W, H: b.H})
			}
		}
		if err := a.Validate(o.Decode); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(imgDir, stem), err)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}
