package fleetmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sundial-mdm/sundial/softwareupdate/scheduler"
)

// Scheduler measures the deadline scheduler's passes and which replica
// holds its lease.
type Scheduler struct {
	duration  prometheus.Histogram
	errors    prometheus.Counter
	evaluated prometheus.Counter
	changed   prometheus.Counter
	commands  prometheus.Counter
	leader    prometheus.Gauge
}

// NewScheduler returns the scheduler metrics, registered with reg; replica
// names this process in the leader gauge.
func NewScheduler(reg prometheus.Registerer, replica string) *Scheduler {
	s := &Scheduler{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "pass_duration_seconds",
			Help:    "How long scheduler passes take.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "pass_errors_total",
			Help: "Scheduler passes that failed."}),
		evaluated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "evaluated_total",
			Help: "Devices evaluated by scheduler passes."}),
		changed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "changed_total",
			Help: "Device update states written by scheduler passes."}),
		commands: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "commands_total",
			Help: "Commands queued by scheduler passes."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "sundial", Subsystem: "scheduler", Name: "leader",
			Help: "1 while this replica holds the scheduler lease, else 0.", ConstLabels: prometheus.Labels{"replica": replica}}),
	}
	reg.MustRegister(s.duration, s.errors, s.evaluated, s.changed, s.commands, s.leader)
	return s
}

// Pass records one pass (a scheduler.PassObserver).
func (s *Scheduler) Pass(st scheduler.Stats, took time.Duration, err error) {
	s.duration.Observe(took.Seconds())
	if err != nil {
		s.errors.Inc()
	}
	s.evaluated.Add(float64(st.Evaluated))
	s.changed.Add(float64(st.Changed))
	s.commands.Add(float64(st.Commands))
}

// Leading records whether this replica holds the lease.
func (s *Scheduler) Leading(yes bool) {
	if yes {
		s.leader.Set(1)
	} else {
		s.leader.Set(0)
	}
}

var _ scheduler.PassObserver = (*Scheduler)(nil).Pass
