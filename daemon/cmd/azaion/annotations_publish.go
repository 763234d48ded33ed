package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/azaion/edge/daemon/internal/config"
	"github.com/azaion/edge/daemon/internal/ingest"
	"github.com/azaion/edge/sdk/annotation"
)

func init() {
	register(&command{Name: "annotations publish", Summary: "send a folder of images + YOLO labels to the annotation stream", Run: runAnnotationsPublish})
}

func runAnnotationsPublish(ctx context.Context, args []string) error {
	fs := newFlags("annotations publish")
	cfgPath := fs.String("config", "", "config file (default /etc/azaion/azaion.yaml when it exists; env AZAION_CONFIG)")
	opName := fs.String("op", "created", "operation of every message: created, validated, edited or deleted")
	author := fs.String("author", os.Getenv("USER"), "author recorded in every message")
	streamName := fs.String("stream", "", "stream name (default: ingest.stream from the config)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: azaion annotations publish [flags] DIR\n\nDIR holds images/ and labels/ (YOLO txt), or both side by side. The broker comes\nfrom AZAION_STREAM_URI, ingest.uri_file or ingest.uri.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("want one DIR, got %d arguments", fs.NArg())
	}
	op, err := annotation.ParseOperation(*opName)
	if err != nil {
		return usageErrorf("-op: %v", err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *streamName == "" {
		*streamName = cfg.Ingest.Stream
	}
	if cfg.Ingest.Broker == "" {
		return fmt.Errorf("no broker: set AZAION_STREAM_URI, ingest.uri_file (mode 0600) or ingest.uri")
	}
	n, err := publishDir(ctx, cfg.Ingest.Broker, *streamName, fs.Arg(0), ingest.PublishOptions{
		Op: op, Author: *author,
		Decode: annotation.DecodeOptions{MaxImageBytes: cfg.Ingest.MaxImageBytes, MaxPixels: cfg.Ingest.MaxPixels},
	})
	if err != nil {
		return err
	}
	fmt.Printf("published %d %s messages to stream %s\n", n, op, *streamName)
	return nil
}

func publishDir(ctx context.Context, broker config.Secret, streamName, dir string, o ingest.PublishOptions) (int, error) {
	ingest.DiscardClientLogs()
	env, err := ingest.NewEnvironment(broker)
	if err != nil {
		return 0, err
	}
	defer env.Close()
	pub, err := ingest.NewPublisher(env, streamName)
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	n := 0
	err = ingest.DirAnnotations(dir, o, func(a *annotation.Annotation) error {
		b, err := annotation.Encode(a)
		if err != nil {
			return err
		}
		n++
		return pub.Send(b)
	})
	if err != nil {
		return n, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return n, pub.Wait(wctx)
}

// queryTail returns the last offset of the stream (-1 when empty).
func queryTail(ctx context.Context, broker config.Secret, streamName string) (int64, error) {
	ingest.DiscardClientLogs()
	env, err := ingest.NewEnvironment(broker)
	if err != nil {
		return -1, err
	}
	defer env.Close()
	return ingest.TailOffset(ctx, env, streamName, 3*time.Second)
}
