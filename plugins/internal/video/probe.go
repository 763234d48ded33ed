package video

/*
#cgo pkg-config: libavformat libavcodec libavutil
#include <stdlib.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>

typedef struct {
	int width, height;
	int fps_num, fps_den;
	int64_t frames;
	int64_t duration_us;
	unsigned int tag;
	int has_video;
	int has_decoder;
	char codec[64];
	char container[64];
	char err[160];
} azaion_probe;

// azaion_probe_file opens a file with libavformat, reads its stream info and
// describes its first video stream. It returns 0 on success, else an
// FFmpeg error code with r->err set.
static int azaion_probe_file(const char *path, azaion_probe *r) {
	AVFormatContext *fc = NULL;
	memset(r, 0, sizeof(*r));
	int rc = avformat_open_input(&fc, path, NULL, NULL);
	if (rc < 0) {
		av_strerror(rc, r->err, sizeof(r->err));
		return rc;
	}
	rc = avformat_find_stream_info(fc, NULL);
	if (rc < 0) {
		av_strerror(rc, r->err, sizeof(r->err));
		avformat_close_input(&fc);
		return rc;
	}
	if (fc->iformat && fc->iformat->name)
		strncpy(r->container, fc->iformat->name, sizeof(r->container) - 1);
	int i = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (i >= 0) {
		AVStream *st = fc->streams[i];
		AVCodecParameters *cp = st->codecpar;
		r->has_video = 1;
		r->width = cp->width;
		r->height = cp->height;
		r->tag = cp->codec_tag;
		r->frames = st->nb_frames;
		AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
		r->fps_num = fr.num;
		r->fps_den = fr.den;
		if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
			r->duration_us = av_rescale_q(st->duration, st->time_base, AV_TIME_BASE_Q);
		else if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0)
			r->duration_us = fc->duration;
		const char *name = avcodec_get_name(cp->codec_id);
		if (name)
			strncpy(r->codec, name, sizeof(r->codec) - 1);
		r->has_decoder = cp->codec_id != AV_CODEC_ID_NONE && avcodec_find_decoder(cp->codec_id) != NULL;
	}
	avformat_close_input(&fc);
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Errors of Probe and Open.
var (
	// ErrNotVideo: the file is not a container or stream with a video track.
	ErrNotVideo = errors.New("not a video")
	// ErrCodec: the video's codec has no decoder here.
	ErrCodec = errors.New("unsupported video codec")
)

// Info describes a video file as its container says.
type Info struct {
	Width, Height int
	// FPS is the average frame rate (0 when unknown).
	FPS float64
	// Frames is the number of frames in the video track (0 when the
	// container does not say).
	Frames int64
	// Duration of the video track (0 when unknown).
	Duration time.Duration
	// Codec is FFmpeg's codec name (h264, hevc, mpeg4 ...); Tag the FourCC
	// of the container's sample entry, when it has one.
	Codec, Tag string
	// Container is FFmpeg's demuxer name (mov,mp4,m4a,3gp,3g2,mj2; matroska,webm ...).
	Container string
}

// Probe reads a video file's container with libavformat (no frame is
// decoded) and describes its first video track. A file that is not a media
// container, or has no video track, is ErrNotVideo; a codec without a
// decoder is ErrCodec, naming it.
func Probe(path string) (Info, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var r C.azaion_probe
	if rc := C.azaion_probe_file(cpath, &r); rc < 0 {
		return Info{}, fmt.Errorf("%w: the file is not a video container FFmpeg can read (%s)", ErrNotVideo, C.GoString(&r.err[0]))
	}
	in := Info{
		Width: int(r.width), Height: int(r.height), Frames: int64(r.frames),
		Duration: time.Duration(r.duration_us) * time.Microsecond,
		Codec:    C.GoString(&r.codec[0]), Tag: fourCC(uint32(r.tag)), Container: C.GoString(&r.container[0]),
	}
	if r.fps_den > 0 && r.fps_num > 0 {
		in.FPS = float64(r.fps_num) / float64(r.fps_den)
	}
	if r.has_video == 0 {
		return in, fmt.Errorf("%w: the %s file has no video track", ErrNotVideo, in.Container)
	}
	if r.has_decoder == 0 {
		name := in.Codec
		if name == "" || name == "none" {
			name = "unknown"
		}
		if in.Tag != "" {
			name = fmt.Sprintf("%s (FourCC %q)", name, in.Tag)
		}
		return in, fmt.Errorf("%w: the video codec %s has no decoder in this build of FFmpeg", ErrCodec, name)
	}
	if in.Width <= 0 || in.Height <= 0 {
		return in, fmt.Errorf("%w: the %s track has no frame size", ErrNotVideo, in.Codec)
	}
	return in, nil
}

// fourCC renders a little-endian FourCC; empty for 0 or unprintable codes.
func fourCC(tag uint32) string {
	if tag == 0 {
		return ""
	}
	b := []byte{byte(tag), byte(tag >> 8), byte(tag >> 16), byte(tag >> 24)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08x", tag)
		}
	}
	return string(b)
}

// ErrOpen: OpenCV could not open the source.
var ErrOpen = errors.New("cannot open the video")
