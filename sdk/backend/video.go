package backend

import (
	"errors"
	"fmt"
	"time"

	"github.com/azaion/edge/sdk/videosrc"
)

// ErrBadSource: DetectVideo cannot use the source: not a video, a codec the
// backend cannot decode, a stream that does not answer, or over a limit.
var ErrBadSource = errors.New("bad video source")

// Annotated video codecs (FourCC), for VideoRequest.AnnotateCodec.
const (
	// CodecMPEG4 is MPEG-4 Part 2 in MP4: fast to encode (the default).
	CodecMPEG4 = "mp4v"
	// CodecH264 is H.264 in MP4: plays in browsers; several times slower to encode.
	CodecH264 = "avc1"
)

// VideoRequest says what DetectVideo decodes and how.
type VideoRequest struct {
	// Source is a video file the plugin can read (an absolute path) or a live
	// stream URL (rtsp://, rtsps://), credentials included.
	Source string
	// Every runs the model on every Every-th decoded frame (1 = all).
	Every int
	// Params are the detection parameters.
	Params DetectParams
	// Start skips the first Start of a file; Duration, when > 0, stops
	// after that much of it.
	Start, Duration time.Duration
	// MaxFrames, when > 0, refuses (ErrBadSource) a file that has more
	// frames than this to decode between Start and Start+Duration.
	MaxFrames int64
	// MaxDuration, when > 0, refuses (ErrBadSource) a file whose part
	// between Start and Start+Duration is longer than this.
	MaxDuration time.Duration
	// Live keeps a stream real time: frames are read as they come, and a
	// frame due for the model while the model is still busy is dropped
	// (counted), never queued.
	Live bool
	// Annotate, when set, is the path of an MP4 file to write: every decoded
	// frame with the boxes and labels of the last processed frame drawn on
	// it. Files only.
	Annotate string
	// AnnotateCodec is CodecMPEG4 (default) or CodecH264.
	AnnotateCodec string
}

// Validate checks the request's fields (not whether the source opens).
func (r VideoRequest) Validate() error {
	switch {
	case r.Source == "":
		return fmt.Errorf("%w: no source", ErrBadSource)
	case r.Every < 1:
		return fmt.Errorf("%w: every %d: want 1 or more", ErrBadSource, r.Every)
	case r.Start < 0 || r.Duration < 0:
		return fmt.Errorf("%w: start and duration must not be negative", ErrBadSource)
	case r.MaxFrames < 0 || r.MaxDuration < 0:
		return fmt.Errorf("%w: the frame and duration limits must not be negative", ErrBadSource)
	}
	if videosrc.IsStream(r.Source) {
		if _, err := videosrc.CheckStream(r.Source); err != nil {
			return fmt.Errorf("%w: %w", ErrBadSource, err)
		}
		if r.Annotate != "" {
			return fmt.Errorf("%w: annotated output is for files, not live streams", ErrBadSource)
		}
		if r.Start > 0 || r.Duration > 0 {
			return fmt.Errorf("%w: start and duration are for files, not live streams", ErrBadSource)
		}
	}
	switch r.AnnotateCodec {
	case "", CodecMPEG4, CodecH264:
	default:
		return fmt.Errorf("%w: annotate codec %q: want %s or %s", ErrBadSource, r.AnnotateCodec, CodecMPEG4, CodecH264)
	}
	return nil
}

// VideoEvent is one message of DetectVideo's stream; exactly one field is set.
// The order is: Info once, then Frame (and, for live streams, Progress)
// events, then Summary once when the source ends.
type VideoEvent struct {
	Info     *VideoInfo
	Frame    *FrameResult
	Progress *VideoProgress
	Summary  *VideoSummary
}

// VideoInfo describes an opened source.
type VideoInfo struct {
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps"`
	// Frames is the number of frames in the file (0 for streams or when unknown).
	Frames int64 `json:"frames,omitempty"`
	// Duration is the file's length (0 for streams or when unknown).
	Duration time.Duration `json:"duration,omitempty"`
	// Codec and Container name the video codec and the container format.
	Codec     string `json:"codec,omitempty"`
	Container string `json:"container,omitempty"`
	// FirstFrame is the index of the first frame decoded (after Start).
	FirstFrame int64 `json:"first_frame"`
	// ToDecode is how many frames will be decoded (0 for streams or when unknown).
	ToDecode int64 `json:"to_decode,omitempty"`
	// MaxBatch is the largest batch the model runs frames in.
	MaxBatch int `json:"max_batch"`
}

// FrameResult is the detections of one processed frame.
type FrameResult struct {
	// Frame is the frame's index in the source (0-based, counted from the
	// first frame of a file, or from the connection of a stream).
	Frame int64 `json:"frame"`
	// PTS is the frame's presentation time in a file; for a stream, the
	// time since the connection.
	PTS time.Duration `json:"pts"`
	// Time is when the frame was decoded.
	Time time.Time `json:"time"`
	// Result holds the size, detections (in frame pixels), timings and batch size.
	Result ImageResult `json:"result"`
}

// VideoProgress are a live stream's counters so far.
type VideoProgress struct {
	Decoded   int64 `json:"decoded"`
	Processed int64 `json:"processed"`
	Dropped   int64 `json:"dropped"`
}

// VideoSummary closes a DetectVideo stream.
type VideoSummary struct {
	// Decoded, Processed and Dropped count frames; Written counts the
	// frames of the annotated video.
	Decoded   int64 `json:"decoded"`
	Processed int64 `json:"processed"`
	Dropped   int64 `json:"dropped"`
	Written   int64 `json:"written"`
	// Wall is the time from open to the end.
	Wall time.Duration `json:"wall"`
	// Decode is the time spent reading frames, Write the time spent drawing
	// and encoding the annotated video; Timings sums the per-frame stages.
	Decode  time.Duration `json:"decode"`
	Write   time.Duration `json:"write"`
	Timings Timings       `json:"timings"`
	// MaxBatch is the largest batch a frame ran in.
	MaxBatch int `json:"max_batch"`
	// Err says why decoding stopped before the end of the source (a
	// truncated or corrupt file); empty when it reached the end.
	Err string `json:"error,omitempty"`
}
