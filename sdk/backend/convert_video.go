package backend

import (
	"time"

	pb "github.com/azaion/edge/sdk/backend/proto"
)

func videoRequestToPB(handle string, r VideoRequest) *pb.DetectVideoRequest {
	return &pb.DetectVideoRequest{Handle: handle, Source: r.Source, Every: int32(r.Every), Params: paramsToPB(r.Params),
		StartNs: int64(r.Start), DurationNs: int64(r.Duration), MaxFrames: r.MaxFrames,
		MaxDurationNs: int64(r.MaxDuration), Live: r.Live,
		Annotate: r.Annotate, AnnotateCodec: r.AnnotateCodec}
}

func videoRequestFromPB(r *pb.DetectVideoRequest) (string, VideoRequest) {
	return r.Handle, VideoRequest{Source: r.Source, Every: int(r.Every), Params: paramsFromPB(r.Params),
		Start: time.Duration(r.StartNs), Duration: time.Duration(r.DurationNs), MaxFrames: r.MaxFrames,
		MaxDuration: time.Duration(r.MaxDurationNs), Live: r.Live,
		Annotate: r.Annotate, AnnotateCodec: r.AnnotateCodec}
}

func timingsToPB(t Timings) *pb.Timings {
	return &pb.Timings{QueueNs: int64(t.Queue), DecodeNs: int64(t.Decode), PreprocessNs: int64(t.Preprocess),
		InferNs: int64(t.Infer), PostNs: int64(t.Post)}
}

func timingsFromPB(t *pb.Timings) Timings {
	if t == nil {
		return Timings{}
	}
	return Timings{Queue: time.Duration(t.QueueNs), Decode: time.Duration(t.DecodeNs),
		Preprocess: time.Duration(t.PreprocessNs), Infer: time.Duration(t.InferNs), Post: time.Duration(t.PostNs)}
}

func videoEventToPB(ev VideoEvent) *pb.VideoEvent {
	switch {
	case ev.Info != nil:
		i := ev.Info
		return &pb.VideoEvent{Event: &pb.VideoEvent_Info{Info: &pb.VideoInfo{Width: int32(i.Width), Height: int32(i.Height),
			Fps: i.FPS, Frames: i.Frames, DurationNs: int64(i.Duration), Codec: i.Codec, Container: i.Container,
			FirstFrame: i.FirstFrame, ToDecode: i.ToDecode, MaxBatch: int32(i.MaxBatch)}}}
	case ev.Frame != nil:
		f := ev.Frame
		var unix int64
		if !f.Time.IsZero() {
			unix = f.Time.UnixNano()
		}
		return &pb.VideoEvent{Event: &pb.VideoEvent_Frame{Frame: &pb.FrameResult{Frame: f.Frame, PtsNs: int64(f.PTS),
			UnixNs: unix, Result: resultToPB(f.Result)}}}
	case ev.Progress != nil:
		p := ev.Progress
		return &pb.VideoEvent{Event: &pb.VideoEvent_Progress{Progress: &pb.VideoProgress{Decoded: p.Decoded,
			Processed: p.Processed, Dropped: p.Dropped}}}
	case ev.Summary != nil:
		s := ev.Summary
		return &pb.VideoEvent{Event: &pb.VideoEvent_Summary{Summary: &pb.VideoSummary{Decoded: s.Decoded,
			Processed: s.Processed, Dropped: s.Dropped, Written: s.Written, WallNs: int64(s.Wall),
			DecodeNs: int64(s.Decode), WriteNs: int64(s.Write), Timings: timingsToPB(s.Timings),
			MaxBatch: int32(s.MaxBatch), Error: s.Err}}}
	}
	return &pb.VideoEvent{}
}

func videoEventFromPB(e *pb.VideoEvent) VideoEvent {
	switch ev := e.Event.(type) {
	case *pb.VideoEvent_Info:
		i := ev.Info
		return VideoEvent{Info: &VideoInfo{Width: int(i.Width), Height: int(i.Height), FPS: i.Fps, Frames: i.Frames,
			Duration: time.Duration(i.DurationNs), Codec: i.Codec, Container: i.Container, FirstFrame: i.FirstFrame,
			ToDecode: i.ToDecode, MaxBatch: int(i.MaxBatch)}}
	case *pb.VideoEvent_Frame:
		f := ev.Frame
		out := &FrameResult{Frame: f.Frame, PTS: time.Duration(f.PtsNs)}
		if f.UnixNs != 0 {
			out.Time = time.Unix(0, f.UnixNs)
		}
		if f.Result != nil {
			out.Result = resultFromPB(f.Result)
		}
		return VideoEvent{Frame: out}
	case *pb.VideoEvent_Progress:
		p := ev.Progress
		return VideoEvent{Progress: &VideoProgress{Decoded: p.Decoded, Processed: p.Processed, Dropped: p.Dropped}}
	case *pb.VideoEvent_Summary:
		s := ev.Summary
		return VideoEvent{Summary: &VideoSummary{Decoded: s.Decoded, Processed: s.Processed, Dropped: s.Dropped,
			Written: s.Written, Wall: time.Duration(s.WallNs), Decode: time.Duration(s.DecodeNs),
			Write: time.Duration(s.WriteNs), Timings: timingsFromPB(s.Timings), MaxBatch: int(s.MaxBatch), Err: s.Error}}
	}
	return VideoEvent{}
}
