package push

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Service's Prometheus collectors.
type metrics struct {
	pushes      *prometheus.CounterVec
	byOutcome   map[Outcome]prometheus.Counter
	latency     prometheus.Histogram
	invalidated prometheus.Counter
	dropped     prometheus.Counter
	pending     prometheus.GaugeFunc
}

func newMetrics(pending func() float64) *metrics {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sundial", Subsystem: "push", Name: "pushes_total",
			Help: "APNs pushes sent, by outcome.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sundial", Subsystem: "push", Name: "latency_seconds",
			Help:    "Time taken by one APNs push request.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		invalidated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sundial", Subsystem: "push", Name: "tokens_invalidated_total",
			Help: "Push tokens that APNs reported unregistered or bad; they are not pushed until the next TokenUpdate.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sundial", Subsystem: "push", Name: "notify_dropped_total",
			Help: "Push requests dropped because the coalescing queue was full.",
		}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "sundial", Subsystem: "push", Name: "pending",
			Help: "Devices waiting in the coalescing queue.",
		}, pending),
	}
	// Export every outcome from the start, so that rates work from zero.
	m.byOutcome = make(map[Outcome]prometheus.Counter, len(Outcomes))
	for _, o := range Outcomes {
		m.byOutcome[o] = m.pushes.WithLabelValues(string(o))
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.pushes, m.latency, m.invalidated, m.dropped, m.pending} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register push metrics: %w", err)
	}
	return nil
}

func (m *metrics) observe(res Result) {
	c, ok := m.byOutcome[res.Outcome]
	if !ok {
		c = m.pushes.WithLabelValues(string(res.Outcome))
	}
	c.Inc()
	if res.Status != 0 {
		m.latency.Observe(res.Latency.Seconds())
	}
	if res.Outcome.InvalidatesToken() {
		m.invalidated.Inc()
	}
}
