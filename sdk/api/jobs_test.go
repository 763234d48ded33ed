package api

import (
	"errors"
	"strings"
	"testing"
)

func TestReadSSE(t *testing.T) {
	stream := ": keep-alive\n\n" +
		"event: progress\ndata: {\"progress\":0.5,\"stage\":\"augment\",\"metrics\":{\"images_done\":1}}\n\n" +
		"data: {\"progress\":0.75}\n\n" +
		"event: end\ndata: {\"progress\":1,\"job\":{\"id\":\"job-1\",\"type\":\"augment\",\"state\":\"succeeded\"}}\n\n"
	var got []JobEvent
	if err := ReadSSE(strings.NewReader(stream), func(ev JobEvent) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Kind != EventProgress || got[0].Metrics["images_done"] != 1 || got[1].Kind != EventProgress ||
		got[2].Kind != EventEnd || got[2].Job == nil || got[2].Job.State != JobSucceeded || !got[2].Job.State.Final() {
		t.Fatalf("events %+v", got)
	}
	stop := errors.New("stop")
	if err := ReadSSE(strings.NewReader(stream), func(JobEvent) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's error", err)
	}
	if err := ReadSSE(strings.NewReader("data: {nope\n\n"), func(JobEvent) error { return nil }); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
