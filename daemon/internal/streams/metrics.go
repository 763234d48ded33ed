package streams

import "github.com/prometheus/client_golang/prometheus"

var (
	descFrames = prometheus.NewDesc("azaion_stream_frames_total",
		"Frames of a live stream session: decoded, processed, or dropped to stay real time.", []string{"stream", "kind"}, nil)
	descReconnects = prometheus.NewDesc("azaion_stream_reconnects_total",
		"Times a live stream session reopened its source.", []string{"stream"}, nil)
	descUp = prometheus.NewDesc("azaion_stream_up",
		"1 while a live stream session receives frames, 0 while it connects.", []string{"stream"}, nil)
	descFPS = prometheus.NewDesc("azaion_stream_fps",
		"Frames per second of a live stream session, decoded (in) and processed (out).", []string{"stream", "dir"}, nil)
)

// Collector returns the sessions' Prometheus series (by session id; the
// source URL is never a label).
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFrames
	ch <- descReconnects
	ch <- descUp
	ch <- descFPS
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.List() {
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(s.FramesDecoded), s.ID, "decoded")
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(s.FramesProcessed), s.ID, "processed")
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(s.FramesDropped), s.ID, "dropped")
		ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(s.Reconnects), s.ID)
		up := 0.0
		if s.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.ID)
		ch <- prometheus.MustNewConstMetric(descFPS, prometheus.GaugeValue, s.FPSIn, s.ID, "in")
		ch <- prometheus.MustNewConstMetric(descFPS, prometheus.GaugeValue, s.FPSOut, s.ID, "out")
	}
}
