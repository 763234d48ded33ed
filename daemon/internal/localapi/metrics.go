package localapi

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus series: requests and, Triton-style, the
// split of time between queueing and compute.
type metrics struct {
	requests      *prometheus.CounterVec
	requestErrors *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	queue         *prometheus.CounterVec
	compute       *prometheus.CounterVec
	batch         *prometheus.HistogramVec
	videoRequests *prometheus.CounterVec
	videoFrames   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_detect_requests_total", Help: "Detection requests by model and result code.",
		}, []string{"model", "code"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_detect_errors_total", Help: "Failed detection requests by error code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "azaion_detect_request_duration_seconds", Help: "End-to-end detection request latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"model"}),
		queue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_inference_queue_duration_us", Help: "Cumulative time requests waited in queues (daemon admission + backend batching), microseconds.",
		}, []string{"model"}),
		compute: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_inference_compute_infer_duration_us", Help: "Cumulative model execution time attributed to requests, microseconds.",
		}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "azaion_inference_batch_size", Help: "Size of the batch each image ran in.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 32},
		}, []string{"model"}),
	}
	m.videoRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "azaion_video_requests_total", Help: "Video detection requests by model and result code.",
	}, []string{"model", "code"})
	m.videoFrames = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "azaion_video_frames_processed_total", Help: "Video frames run through a model by POST /v1/detect/video.",
	}, []string{"model"})
	reg.MustRegister(m.requests, m.requestErrors, m.latency, m.queue, m.compute, m.batch, m.videoRequests, m.videoFrames)
	return m
}

// unknownModel is the model label of requests that name no registered model.
const unknownModel = "_unknown"

// metricsModel returns the model label for a request's model parameter: the
// name when such a model is registered, else one shared value, so that
// requests naming made-up models cannot create series without bound.
func (s *Server) metricsModel(name string) string {
	if name == "" {
		return "-"
	}
	if n, _, _ := strings.Cut(name, ":"); n != "" {
		if _, ok := s.opts.Sched.Registered(n); ok {
			return n
		}
	}
	return unknownModel
}

func (m *metrics) observeRequest(model, code string, d time.Duration) {
	if model == "" {
		model = "-"
	}
	m.requests.WithLabelValues(model, code).Inc()
	if code == "ok" {
		m.latency.WithLabelValues(model).Observe(d.Seconds())
	}
}

func (m *metrics) observeStages(model string, queue, infer time.Duration, batch int) {
	m.queue.WithLabelValues(model).Add(float64(queue.Microseconds()))
	m.compute.WithLabelValues(model).Add(float64(infer.Microseconds()))
	if batch > 0 {
		m.batch.WithLabelValues(model).Observe(float64(batch))
	}
}
