// Package backend is the contract between the daemon and an inference backend
// plugin (ONNX Runtime, TensorRT, RKNN): the Go interface every backend
// implements, its types, the go-plugin wrapper (plugin.go), the gRPC shims
// (client.go, server.go) over proto/backend.proto, and a conformance suite
// (conformance/) that every backend runs. Plugins and the daemon import it.
package backend

import (
	"context"
	"errors"
	"time"

	"github.com/azaion/edge/sdk/api"
	"github.com/azaion/edge/sdk/model"
	"github.com/azaion/edge/sdk/yolo"
)

// APIVersion is the version of this contract that plugins advertise and the
// daemon picks.
const APIVersion = "backend/v1"

// PluginName is the go-plugin name under which a backend is dispensed.
const PluginName = "backend"

// Backend is an inference backend. Implementations must be safe for
// concurrent use: the daemon calls Detect from many goroutines, and a backend
// batches concurrent calls when the model allows it.
type Backend interface {
	// Info describes the backend and its devices.
	Info(ctx context.Context) (*Info, error)
	// Load loads a model from memory (plaintext model bytes; nothing is
	// written to disk), warms it up and returns its handle and resolved descriptor.
	Load(ctx context.Context, desc model.Descriptor, data []byte) (*LoadResult, error)
	// Detect runs the model on encoded images (JPEG, PNG, ...). It fails as a
	// whole only for call-level errors (unknown handle, cancelled); a bad
	// image gets an ImageResult with Err set.
	Detect(ctx context.Context, handle string, images [][]byte, p DetectParams) ([]ImageResult, error)
	// Unload frees a model.
	Unload(ctx context.Context, handle string) error
	// Health returns nil when the backend can serve.
	Health(ctx context.Context) error
	// Stats returns counters per loaded model.
	Stats(ctx context.Context) (*Stats, error)
	// DetectVideo decodes the video file or live stream req.Source inside
	// the backend and runs the model on every req.Every-th frame, in
	// batches up to the model's batch. It calls emit, from one goroutine at
	// a time, with a VideoInfo once the source is open, a FrameResult per
	// processed frame in frame order, and a VideoSummary at the end of the
	// source; an error from emit stops it and is returned. A source that
	// cannot be opened or decoded is an error wrapping ErrBadSource;
	// cancelling ctx stops the decoding at once.
	DetectVideo(ctx context.Context, handle string, req VideoRequest, emit func(VideoEvent) error) error
}

// Device kinds.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
	DeviceNPU  = "npu"
)

// Info describes a backend.
type Info struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	APIVersions []string `json:"api_versions"`
	Devices     []Device `json:"devices"`
	// Formats are the model formats it loads (onnx, engine, rknn).
	Formats []string `json:"formats"`
	// Providers are the execution providers available (cpu, cuda, tensorrt).
	Providers []string `json:"providers,omitempty"`
	// SharedImagesID is the ID of the shared image region (sdk/shmem) the
	// plugin mapped at start; empty when it has none. Filled by the gRPC
	// server shim, not by the backend.
	SharedImagesID string `json:"shared_images_id,omitempty"`
}

// Device is one compute device of a backend: its id, kind (DeviceCPU,
// DeviceCUDA, DeviceNPU), name, memory in bytes, Compute (the CUDA compute
// capability or the SoC name) and UUID where the runtime reports one. It is
// the local API's type, so the daemon reports it as the plugin gave it.
type Device = api.BackendDevice

// LoadResult is what Load returns.
type LoadResult struct {
	Handle string `json:"handle"`
	// Descriptor is the resolved descriptor (defaults filled from the model).
	Descriptor model.Descriptor `json:"descriptor"`
	// Device is the id of the device it runs on.
	Device string `json:"device"`
	// DeviceBytes is the memory the model uses on the device, when known.
	DeviceBytes int64 `json:"device_bytes"`
	// Warmup is how long the warm-up inference took.
	Warmup time.Duration `json:"warmup"`
	// MaxBatch is the largest batch the backend will form for this model.
	MaxBatch int `json:"max_batch"`
}

// DetectParams are the per-request detection parameters.
type DetectParams struct {
	yolo.Params
	// MaxPixels rejects images with more pixels (width*height); 0 = no limit.
	MaxPixels int64
}

// Timings are the per-image stage durations.
type Timings struct {
	// Queue is the time spent waiting for a batch to form and run.
	Queue      time.Duration `json:"queue"`
	Decode     time.Duration `json:"decode"`
	Preprocess time.Duration `json:"preprocess"`
	Infer      time.Duration `json:"infer"`
	Post       time.Duration `json:"post"`
}

// ImageResult is the result for one image.
type ImageResult struct {
	Width      int              `json:"width"`
	Height     int              `json:"height"`
	Detections []yolo.Detection `json:"detections"`
	Timings    Timings          `json:"timings"`
	// BatchSize is the size of the batch this image ran in.
	BatchSize int `json:"batch_size"`
	// Err is set when this image could not be processed.
	Err *ImageError `json:"error,omitempty"`
}

// Image error codes.
const (
	// ImageUndecodable: not an image the backend can decode, or truncated.
	ImageUndecodable = "undecodable"
	// ImageTooLarge: more pixels than DetectParams.MaxPixels.
	ImageTooLarge = "too_many_pixels"
	// ImageTooSmall: smaller than the backend can use.
	ImageTooSmall = "too_small"
)

// ImageError says why one image failed.
type ImageError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ImageError) Error() string { return e.Code + ": " + e.Message }

// Stats are backend counters.
type Stats struct {
	Models []ModelStats `json:"models"`
	// Videos is the number of videos and streams being decoded now.
	Videos int `json:"videos"`
}

// ModelStats are the counters of one loaded model.
type ModelStats struct {
	Handle   string        `json:"handle"`
	Name     string        `json:"name"`
	Requests uint64        `json:"requests"`
	Images   uint64        `json:"images"`
	Batches  uint64        `json:"batches"`
	Errors   uint64        `json:"errors"`
	Busy     time.Duration `json:"busy"`
}

// Sentinel errors. The gRPC shims carry them across the process boundary
// (as gRPC status codes) so callers can test them with errors.Is.
var (
	// ErrUnknownHandle: Detect or Unload with a handle that is not loaded.
	ErrUnknownHandle = errors.New("unknown model handle")
	// ErrBadModel: Load got a model it cannot use (corrupt, wrong layout).
	ErrBadModel = errors.New("bad model")
	// ErrUnsupported: the request needs something this backend lacks
	// (an execution provider, a format).
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: the backend cannot serve right now.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrBusy: the backend is at a resource limit (its decode memory
	// budget); the request may be retried shortly.
	ErrBusy = errors.New("backend busy")
	// ErrSharedImages: the plugin cannot read a request's shared image
	// references (it has no mapping of the region, or a reference is out
	// of it); the Client then sends that plugin bytes.
	ErrSharedImages = errors.New("shared image references refused")
)
